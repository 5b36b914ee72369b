"""ImageAdjust: brightness, contrast, saturation and gamma of an IMAGE batch (a typed `@node`).

Brightness, contrast and saturation follow PIL's ImageEnhance (a blend with black, with the image's
mean grey, with its greyscale version: factor 1 is the identity, 0 the degenerate image), applied in
that order on floats, so a chain does not lose precision to 8-bit rounding between steps.
"""
from __future__ import annotations

import torch

from engine import FLOAT, IMAGE, Input, Output, RunContext, node

# ITU-R 601-2 luma, the weights of PIL's convert("L").
LUMA = (0.299, 0.587, 0.114)


def luma(image: torch.Tensor) -> torch.Tensor:
    """[H,W,C] RGB in 0..1 -> [H,W,1] grey."""
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device)
    return (image[..., :3] * weights).sum(-1, keepdim=True)


def adjust(image: torch.Tensor, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
           gamma: float = 1.0) -> torch.Tensor:
    """One [H,W,C] image, adjusted; a new tensor, the input is never modified."""
    out = image * brightness
    if contrast != 1.0:
        mean = luma(out.clamp(0, 1)).mean()
        out = mean + (out - mean) * contrast
    if saturation != 1.0:
        grey = luma(out.clamp(0, 1))
        out = grey + (out - grey) * saturation
    out = out.clamp(0, 1)
    if gamma != 1.0:
        out = out.pow(1.0 / gamma)  # gamma > 1 brightens mid-tones, as in image editors
    return out


@node("ImageAdjust", category="image/adjust", display_name="Image Adjust")
class ImageAdjust:
    """Change brightness, contrast, saturation and gamma; 1.0 everywhere leaves the image unchanged."""

    inputs = (
        Input("image", IMAGE),
        Input("brightness", FLOAT, default=1.0, min=0.0, max=4.0, step=0.01, tooltip="0 = black"),
        Input("contrast", FLOAT, default=1.0, min=0.0, max=4.0, step=0.01, tooltip="0 = flat mean grey"),
        Input("saturation", FLOAT, default=1.0, min=0.0, max=4.0, step=0.01, tooltip="0 = greyscale"),
        Input("gamma", FLOAT, default=1.0, min=0.1, max=10.0, step=0.01, tooltip=">1 brightens mid-tones"),
    )
    outputs = (Output(IMAGE, name="IMAGE"),)

    def run(self, image: torch.Tensor, brightness: float, contrast: float, saturation: float, gamma: float,
            ctx: RunContext) -> tuple[torch.Tensor]:
        results = []
        for index in range(image.shape[0]):
            results.append(adjust(image[index], brightness, contrast, saturation, gamma))
            ctx.progress(index + 1, image.shape[0])  # also where a cancel takes effect
        return (torch.stack(results),)
