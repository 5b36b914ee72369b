"""ComfyUI's `comfy.sd` module name; the implementation is compat/sd.py."""
from compat.sd import *  # noqa: F401,F403
from compat.sd import __all__  # noqa: F401
