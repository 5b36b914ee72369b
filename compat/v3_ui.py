"""ComfyUI's V3 UI outputs (`comfy_api.latest.ui`): PreviewImage, PreviewMask, SavedImages, PreviewText.

Each has `as_dict()`, the node's `ui` dict in the `executed` event and history, shaped as ComfyUI's:
`{"images": [{"filename", "subfolder", "type"}], "animated": (False,)}`, `{"text": (str,)}`.
"""
from __future__ import annotations

import random
import string
from typing import Any

__all__ = ["SavedResult", "SavedImages", "PreviewImage", "PreviewMask", "PreviewText", "ImageSaveHelper"]


def SavedResult(filename: str, subfolder: str, type: str) -> dict[str, str]:  # noqa: N802 - ComfyUI's name
    """One saved file as the ui lists it."""
    return {"filename": filename, "subfolder": subfolder, "type": str(getattr(type, "value", type))}


class SavedImages:
    """Images already saved by the node: shown in the UI as they are."""

    def __init__(self, results: list[dict[str, str]], is_animated: bool = False) -> None:
        self.results, self.is_animated = list(results), is_animated

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.results, "animated": (self.is_animated,)}


class ImageSaveHelper:
    """Writes a `[B,H,W,C]` batch as PNGs into the output or temp folder (with the prompt metadata)."""

    @staticmethod
    def save_images(images: Any, filename_prefix: str, folder_type: Any = "output", cls: Any = None,
                    compress_level: int = 4) -> list[dict[str, str]]:
        from engine import active_paths
        from nodes.sd.files import save_images  # torch lives in nodes; imported only when a node saves

        kind = str(getattr(folder_type, "value", folder_type))
        hidden = getattr(cls, "hidden", None)
        return save_images(images, active_paths().directory_by_type(kind), filename_prefix, kind,
                           getattr(hidden, "prompt", None), getattr(hidden, "extra_pnginfo", None), compress_level)


class PreviewImage(SavedImages):
    """Saves the batch to the temp folder (ComfyUI_temp_xxxxx prefix) and shows it."""

    def __init__(self, image: Any, animated: bool = False, cls: Any = None, **_: Any) -> None:
        suffix = "".join(random.choice(string.ascii_lowercase) for _ in range(5))
        super().__init__(ImageSaveHelper.save_images(image, "ComfyUI_temp_" + suffix, "temp", cls, 1), animated)


class PreviewMask(PreviewImage):
    """A `[B,H,W]` mask shown as a grey image."""

    def __init__(self, mask: Any, animated: bool = False, cls: Any = None, **kw: Any) -> None:
        image = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        super().__init__(image, animated, cls, **kw)


class PreviewText:
    """Text shown under the node."""

    def __init__(self, value: str, **_: Any) -> None:
        self.value = value

    def as_dict(self) -> dict[str, Any]:
        return {"text": (self.value,)}
