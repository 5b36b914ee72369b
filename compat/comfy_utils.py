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

import torch

from engine import current_context
from engine.events import Preview, Progress

SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")

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


def lanczos(samples: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize `[B,C,H,W]` 0..1 images with PIL's Lanczos filter (8-bit, as ComfyUI does)."""
    from nodes.sd.resize import lanczos as resize_lanczos

    return resize_lanczos(samples, width, height)


def common_upscale(samples: torch.Tensor, width: int, height: int, upscale_method: str,
                   crop: str) -> torch.Tensor:
    """Resize `[B,C,H,W]` (or `[B,C,T,H,W]`, frame by frame) to height x width, as the built-in
    ImageScale/LatentUpscale nodes do (nodes.sd.resize): nearest-exact, bilinear, area, bicubic,
    lanczos, bislerp; crop is "disabled" or "center"."""
    from nodes.sd.resize import common_upscale as resize

    if samples.ndim <= 4:
        return resize(samples, width, height, upscale_method, crop)
    shape = tuple(samples.shape)
    flat = samples.movedim(1, 2).reshape(-1, shape[1], shape[-2], shape[-1])  # frames become the batch
    out = resize(flat, width, height, upscale_method, crop)
    return out.reshape(shape[0], shape[2], shape[1], height, width).movedim(2, 1)


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
