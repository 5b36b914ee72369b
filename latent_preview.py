"""ComfyUI's `latent_preview` module name, for packs that `import latent_preview`.

A facade: the implementation is compat/latent_preview.py.
"""
from compat.latent_preview import *  # noqa: F401,F403
from compat.latent_preview import __all__  # noqa: F401
