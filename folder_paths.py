"""ComfyUI's `folder_paths` module name, for packs that `import folder_paths`.

A facade: the implementation (over engine.active_paths()) is compat/folder_paths.py.
"""
from compat.folder_paths import *  # noqa: F401,F403  (the names in its __all__)
from compat.folder_paths import __all__, __getattr__  # noqa: F401  (__getattr__: base_path, models_dir, ...)
