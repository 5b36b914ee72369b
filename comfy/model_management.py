"""ComfyUI's `comfy.model_management` module name; the implementation is compat/model_management.py."""
from compat.model_management import *  # noqa: F401,F403
from compat.model_management import __all__  # noqa: F401
