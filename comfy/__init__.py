"""ComfyUI's `comfy` package name, for packs that `import comfy.utils` and friends.

Only the submodules ComfyUI packs commonly use exist: utils, model_management, samplers, sd.
Each is a facade over the matching module of the `compat` package, which documents them.
"""
