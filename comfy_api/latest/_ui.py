"""ComfyUI's `comfy_api.latest._ui` module name; the implementation is compat/v3_ui.py."""
from compat.v3_ui import *  # noqa: F401,F403
from compat.v3_ui import __all__  # noqa: F401
