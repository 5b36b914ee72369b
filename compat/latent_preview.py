"""ComfyUI's `latent_preview`: step callbacks that report progress and (optionally) a preview image.

`prepare_callback(model, steps)` returns `callback(step, x0, x, total_steps)` as ComfyUI's samplers
call it. Previews follow the built-in samplers' policy (nodes.sampling.preview: the run's
`services["preview_method"]`, "none" by default) and use the same latent->RGB factors.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from engine import current_context
from nodes.sampling.preview import MAX_PREVIEW_SIZE, SD1_LATENT_RGB_FACTORS, previews_wanted

from .comfy_utils import ProgressBar

MAX_PREVIEW_RESOLUTION = MAX_PREVIEW_SIZE

__all__ = ["Latent2RGBPreviewer", "LatentPreviewer", "get_previewer", "prepare_callback",
           "MAX_PREVIEW_RESOLUTION"]


class LatentPreviewer:
    def decode_latent_to_preview(self, x0: torch.Tensor) -> Image.Image:
        raise NotImplementedError

    def decode_latent_to_preview_image(self, preview_format: str, x0: torch.Tensor) -> tuple[str, Image.Image, int]:
        return preview_format, self.decode_latent_to_preview(x0), MAX_PREVIEW_RESOLUTION


class Latent2RGBPreviewer(LatentPreviewer):
    """Preview the first latent of a batch as RGB through a linear map (no VAE decode)."""

    def __init__(self, latent_rgb_factors: Any = SD1_LATENT_RGB_FACTORS, latent_rgb_factors_bias: Any = None):
        self.factors = torch.tensor(latent_rgb_factors, dtype=torch.float32)
        self.bias = torch.tensor(latent_rgb_factors_bias, dtype=torch.float32) if latent_rgb_factors_bias else None

    def decode_latent_to_preview(self, x0: torch.Tensor) -> Image.Image:
        rgb = x0[0].detach().float().cpu().permute(1, 2, 0) @ self.factors
        if self.bias is not None:
            rgb = rgb + self.bias
        pixels = ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
        return Image.fromarray(pixels)


def get_previewer(device: Any = None, latent_format: Any = None) -> LatentPreviewer | None:
    """The previewer for this run's preview method, or None when previews are off."""
    if previews_wanted(current_context()):  # no TAESD weights ship with Diffgraph: always latent2rgb
        factors = getattr(latent_format, "latent_rgb_factors", None) or SD1_LATENT_RGB_FACTORS
        return Latent2RGBPreviewer(factors, getattr(latent_format, "latent_rgb_factors_bias", None))
    return None


def prepare_callback(model: Any, steps: int, x0_output_dict: dict[str, Any] | None = None,
                     preview_format: str = "JPEG") -> Callable[[int, torch.Tensor, torch.Tensor, int], None]:
    """A sampler step callback: progress step+1 of total (a cancel point) with an optional preview."""
    previewer = get_previewer(getattr(model, "device", None), getattr(model, "latent_format", None))
    pbar = ProgressBar(steps)

    def callback(step: int, x0: torch.Tensor, x: torch.Tensor, total_steps: int) -> None:
        if x0_output_dict is not None:
            x0_output_dict["x0"] = x0
        preview = previewer.decode_latent_to_preview_image(preview_format, x0) if previewer else None
        pbar.update_absolute(step + 1, total_steps, preview)

    return callback
