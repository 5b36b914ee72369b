"""Built-in nodes, loaded as a pack exactly like a plugin.

Every module in this package whose name ends in `_nodes` contributes its `NODE_CLASS_MAPPINGS`
(and `NODE_DISPLAY_NAME_MAPPINGS`). For ComfyUI packs that `import nodes`, this module also
carries ComfyUI's names: `MAX_RESOLUTION` and each built-in node class as an attribute
(`nodes.KSampler`, `nodes.LoraLoader`, ...) with ComfyUI's method names, and `common_ksampler`.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .comfy_classes import apply_comfy_names
from .sampling_nodes import common_ksampler

MAX_RESOLUTION = 16384
__all__ = ["MAX_RESOLUTION", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "common_ksampler"]


def _node_modules() -> list[Any]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_nodes"))
    return [importlib.import_module(f"{__name__}.{n}") for n in names]


def _collect() -> tuple[dict[str, type], dict[str, str]]:
    classes: dict[str, type] = {}
    display: dict[str, str] = {}
    for module in _node_modules():
        for name, cls in getattr(module, "NODE_CLASS_MAPPINGS", {}).items():
            if name in classes:
                raise RuntimeError(f"built-in node {name!r} is defined twice ({module.__name__})")
            classes[name] = cls
        display.update(getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}))
    return classes, display


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = _collect()
apply_comfy_names(NODE_CLASS_MAPPINGS)  # ComfyUI's FUNCTION names (load_checkpoint, sample, ...)


def __getattr__(name: str) -> Any:
    # ComfyUI packs do `nodes.KSampler`, `nodes.LoraLoader`: serve the built-in classes by name.
    try:
        return NODE_CLASS_MAPPINGS[name]
    except KeyError:
        raise AttributeError(f"module 'nodes' has no attribute {name!r}", name=name) from None
