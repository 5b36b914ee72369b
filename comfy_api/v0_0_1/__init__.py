"""ComfyUI's `comfy_api.v0_0_1`: the same API as comfy_api.latest (we implement one version)."""
from comfy_api.latest import ComfyAPI, ComfyAPISync, ComfyExtension, Input, InputImpl, Types, io, ui

__all__ = ["ComfyAPI", "ComfyAPISync", "ComfyExtension", "Input", "InputImpl", "Types", "io", "ui"]
