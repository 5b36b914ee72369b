"""ComfyUI's V3 pack entry point: `ComfyExtension` and the `comfy_entrypoint()` discovery helper.

A V3 pack defines `async def comfy_entrypoint() -> ComfyExtension`; the extension's async
`get_node_list()` returns its ComfyNode classes. engine/plugins.py calls `comfy_entrypoint` (sync or
async) and registers each class under its schema's node_id.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from . import v3_io as io
from . import v3_ui as ui

__all__ = ["ComfyExtension", "ComfyAPI", "ComfyAPISync", "io", "ui", "Input", "InputImpl", "Types"]


class ComfyExtension(ABC):
    """What `comfy_entrypoint()` returns."""

    async def on_load(self) -> None:
        """Called once before get_node_list()."""
        return None

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The pack's node classes."""


class _Progress:
    async def set_progress(self, value: float, max_value: float, node_id: str | None = None,
                           preview_image: object = None, ignore_size_limit: bool = False) -> None:
        from compat.comfy_utils import ProgressBar

        ProgressBar(int(max_value)).update_absolute(int(value), int(max_value))


class ComfyAPI:
    """`ComfyAPI().execution.set_progress(...)`: progress of the running node."""

    def __init__(self) -> None:
        self.execution = _Progress()


class _ProgressSync:
    def set_progress(self, value: float, max_value: float, node_id: str | None = None,
                     preview_image: object = None, ignore_size_limit: bool = False) -> None:
        from compat.comfy_utils import ProgressBar

        ProgressBar(int(max_value)).update_absolute(int(value), int(max_value))


class ComfyAPISync:
    """The synchronous twin of ComfyAPI."""

    def __init__(self) -> None:
        self.execution = _ProgressSync()


class Input:
    """Type aliases packs annotate with (`Input.Image`...); tensors at run time."""

    Image = object
    Mask = object
    Latent = dict


InputImpl = Input
Types = Input
