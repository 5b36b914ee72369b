"""ComfyUI's `comfy.samplers` module name; the implementation is compat/samplers.py."""
from compat.samplers import *  # noqa: F401,F403
from compat.samplers import __all__, __getattr__  # noqa: F401  (__getattr__: SAMPLER_NAMES, ...)
