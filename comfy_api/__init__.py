"""ComfyUI's `comfy_api` package name for V3 node packs; the implementation is compat/v3_*.py.

`comfy_api.latest` is the current API; `comfy_api.v0_0_2` (and v0_0_1) are the versioned names packs pin.
"""
