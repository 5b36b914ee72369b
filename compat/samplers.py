"""ComfyUI's `comfy.samplers`: the sampler and scheduler names, read from Diffgraph's nodes.sampling.

Packs put `comfy.samplers.KSampler.SAMPLERS` / `.SCHEDULERS` in their INPUT_TYPES combos; these are
the exact lists our KSampler accepts. ComfyUI's sampler objects themselves are not provided.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["KSampler"]
# Read on access (module __getattr__), so importing comfy.samplers does not import nodes.sampling.
DYNAMIC_ATTRIBUTES = ("SAMPLER_NAMES", "SCHEDULER_NAMES", "KSAMPLER_NAMES")

SAMPLING_MODULE = "nodes.sampling"


def _names(attribute: str) -> list[str]:
    # Imported on first use: nodes.sampling pulls in torch and the schedulers.
    return list(getattr(importlib.import_module(SAMPLING_MODULE), attribute))


class _SamplerNames(type):
    @property
    def SAMPLERS(cls) -> list[str]:  # noqa: N802 (ComfyUI's name)
        return _names("SAMPLER_NAMES")

    @property
    def SCHEDULERS(cls) -> list[str]:  # noqa: N802
        return _names("SCHEDULER_NAMES")


class KSampler(metaclass=_SamplerNames):
    """Carries ComfyUI's class attributes `KSampler.SAMPLERS` and `KSampler.SCHEDULERS` only."""


def __getattr__(name: str) -> Any:
    if name in ("SAMPLER_NAMES", "KSAMPLER_NAMES"):
        return _names("SAMPLER_NAMES")
    if name == "SCHEDULER_NAMES":
        return _names("SCHEDULER_NAMES")
    raise AttributeError(f"module 'comfy.samplers' has no attribute {name!r} (Diffgraph provides: "
                         f"{', '.join(__all__ + list(DYNAMIC_ATTRIBUTES))})")
