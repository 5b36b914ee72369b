"""ComfyUI's `comfy.utils`: ProgressBar over RunContext.progress, common_upscale, model file I/O.

`ProgressBar` reports through the RunContext of the node that created it, so a pack's progress
reaches the websocket and the CLI exactly like a built-in node's, and every update is a cancel point
(ComfyUI's progress hook checks for interrupts too).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine import current_context
from engine.events import Preview, Progress

SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")
UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")

__all__ = ["ProgressBar", "common_upscale", "lanczos", "load_torch_file", "save_torch_file",
           "repeat_to_batch_size", "PROGRESS_BAR_ENABLED"]

PROGRESS_BAR_ENABLED = True


class ProgressBar:
    """`ProgressBar(total, node_id=None)`; `update(n)` adds n steps, `update_absolute(v, total, preview)`.

    Outside a run (no RunContext) it only counts. `preview` is ComfyUI's ("JPEG", PIL image, max_size).
    """

    def __init__(self, total: int, node_id: str | None = None):
        self.total = int(total)
        self.current = 0
        self._ctx = current_context()
        self.node_id = node_id if node_id is not None else (self._ctx.node_id if self._ctx else None)

    def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
        if total is not None:
            self.total = int(total)
        self.current = min(int(value), self.total)
        ctx = self._ctx or current_context()
        if ctx is None:
            return
        if self.node_id in (None, ctx.node_id):
            ctx.progress(self.current, self.total, preview)
            return
        ctx.check_cancelled()  # a bar for another node id (ComfyUI allows it): same event, that node
        ctx.emit(Progress(ctx.run_id, node=str(self.node_id), value=self.current, max=self.total))
        if preview is not None:
            ctx.emit(Preview(ctx.run_id, node=str(self.node_id), image=preview))

    def update(self, value: int) -> None:
        self.update_absolute(self.current + int(value))


def _center_crop(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Crop the middle to the target aspect ratio before resizing (ComfyUI's crop="center")."""
    old_h, old_w = samples.shape[-2], samples.shape[-1]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return samples.narrow(-2, y, old_h - 2 * y).narrow(-1, x, old_w - 2 * x)


def lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize `[B,C,H,W]` 0..1 images with PIL's Lanczos filter (8-bit, as ComfyUI does)."""
    out = []
    for image in samples:
        array = (image.movedim(0, -1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        pil = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array)
        resized = np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
        tensor = torch.from_numpy(resized)
        out.append((tensor.unsqueeze(-1) if tensor.ndim == 2 else tensor).movedim(-1, 0))
    return torch.stack(out).to(samples.device, samples.dtype)


def common_upscale(samples: torch.Tensor, width: int, height: int, upscale_method: str,
                   crop: str) -> torch.Tensor:
    """Resize `[B,C,H,W]` (or `[B,C,T,H,W]`) to height x width; crop is "disabled" or "center".

    Methods: nearest-exact, bilinear, area, bicubic (torch interpolate, no antialias, as ComfyUI) and
    lanczos (PIL). ComfyUI's "bislerp" is not provided.
    """
    if upscale_method not in UPSCALE_METHODS:
        raise ValueError(f"upscale_method {upscale_method!r} is not one of {', '.join(UPSCALE_METHODS)}")
    shape = tuple(samples.shape)
    flat = samples.reshape(-1, shape[1], shape[-2], shape[-1]) if samples.ndim > 4 else samples
    src = _center_crop(flat, width, height) if crop == "center" else flat
    if upscale_method == "lanczos":
        out = lanczos(src, width, height)
    else:
        out = F.interpolate(src, size=(height, width), mode=upscale_method)
    return out.reshape(*shape[:-2], height, width) if samples.ndim > 4 else out


def repeat_to_batch_size(tensor: torch.Tensor, batch_size: int, dim: int = 0) -> torch.Tensor:
    """Trim or tile `tensor` along `dim` to exactly `batch_size` entries."""
    size = tensor.shape[dim]
    if size > batch_size:
        return tensor.narrow(dim, 0, batch_size)
    if size < batch_size:
        reps = [1] * tensor.ndim
        reps[dim] = math.ceil(batch_size / size)
        return tensor.repeat(reps).narrow(dim, 0, batch_size)
    return tensor


def load_torch_file(ckpt: str | os.PathLike, safe_load: bool = False, device: Any = None,
                    return_metadata: bool = False) -> Any:
    """Read a state dict with its stored dtypes. Safetensors directly; pickle files only through the
    built-in loaders' policy (nodes.sd.safetensors_io: refused without the explicit opt-in, and then
    `torch.load(weights_only=True)` whatever `safe_load` says)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from nodes.sd.safetensors_io import load_pickle_state_dict, sniff_format

    path = os.fspath(ckpt)
    device = torch.device("cpu") if device is None else torch.device(device)
    if path.lower().endswith(SAFETENSORS_EXTENSIONS) or sniff_format(Path(path)) == "safetensors":
        sd = load_file(path, device=str(device))
        if not return_metadata:
            return sd
        with safe_open(path, framework="pt") as handle:
            return sd, handle.metadata()
    sd = {k: v.to(device) for k, v in load_pickle_state_dict(Path(path)).items()}
    return (sd, None) if return_metadata else sd


def save_torch_file(sd: dict[str, torch.Tensor], ckpt: str | os.PathLike,
                    metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    save_file(sd, os.fspath(ckpt), metadata=metadata)
