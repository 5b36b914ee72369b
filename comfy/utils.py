"""ComfyUI's `comfy.utils` module name; the implementation is compat/comfy_utils.py."""
from compat.comfy_utils import *  # noqa: F401,F403
from compat.comfy_utils import __all__  # noqa: F401
