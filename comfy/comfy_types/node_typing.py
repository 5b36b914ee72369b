"""ComfyUI's `comfy.comfy_types.node_typing` module name; the implementation is compat/comfy_types.py."""
from compat.comfy_types import *  # noqa: F401,F403
from compat.comfy_types import __all__  # noqa: F401
