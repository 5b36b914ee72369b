"""ComfyUI's `comfy_api.latest._io` module name; the implementation is compat/v3_io.py."""
from compat.v3_io import *  # noqa: F401,F403
from compat.v3_io import __all__  # noqa: F401
