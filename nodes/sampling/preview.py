"""A cheap latent -> RGB preview: a fixed linear map of SD1's 4 latent channels, no VAE decode.

The factors are the widely used least-squares fit of SD1.x's decoder colours. Previews are made only
when the run asks for them (`ctx.services["preview_method"]` in auto/latent2rgb/taesd, as ComfyUI's
--preview-method), and come out as ComfyUI's ("JPEG", PIL image, max size) triple.
"""
from __future__ import annotations

from typing import Any

import torch

SD1_LATENT_RGB_FACTORS = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350),
                          (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177))
MAX_PREVIEW_SIZE = 512
PREVIEW_METHODS = ("auto", "latent2rgb", "taesd")


def previews_wanted(ctx: Any) -> bool:
    services = getattr(ctx, "services", None) or {}
    return services.get("preview_method", "none") in PREVIEW_METHODS


def latent_to_rgb(latent: torch.Tensor) -> torch.Tensor:
    """[B,4,h,w] latent -> [h,w,3] float RGB in 0..1 of the first image."""
    factors = torch.tensor(SD1_LATENT_RGB_FACTORS, dtype=torch.float32)
    rgb = latent[0, :4].detach().float().cpu().permute(1, 2, 0) @ factors
    return ((rgb + 1.0) / 2.0).clamp(0.0, 1.0)


def latent_preview(latent: torch.Tensor) -> tuple[str, Any, int]:
    """("JPEG", PIL image, MAX_PREVIEW_SIZE) for the first latent of a batch."""
    from PIL import Image

    pixels = latent_to_rgb(latent).mul(255).round().to(torch.uint8).numpy()
    return ("JPEG", Image.fromarray(pixels), MAX_PREVIEW_SIZE)
