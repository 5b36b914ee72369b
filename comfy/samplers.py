"""ComfyUI's `comfy.samplers` module name; the implementation is compat/samplers.py."""
from compat.samplers import *  # noqa: F401,F403
from compat.samplers import __all__  # noqa: F401
from compat.samplers import __getattr__  # noqa: F401,E402  (SAMPLER_NAMES, SCHEDULER_NAMES on access)
