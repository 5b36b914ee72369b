"""ComfyUI's `comfy_api.latest`: `io`, `ui`, `ComfyExtension`, `ComfyAPI` (compat/v3_api.py)."""
from compat.v3_api import ComfyAPI, ComfyAPISync, ComfyExtension, Input, InputImpl, Types, io, ui

__all__ = ["ComfyAPI", "ComfyAPISync", "ComfyExtension", "Input", "InputImpl", "Types", "io", "ui"]
