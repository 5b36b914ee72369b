"""VAE encode/decode with ComfyUI's conventions, whole or in tiles.

IMAGE is `[B,H,W,C]` float 0..1 on the CPU; LATENT samples are the VAE's raw latents (the mean of
the posterior, unscaled: samplers apply `DiffusionModel.latent_scale`). Tiled passes blend tiles
with linear feathering over the overlap and, like ComfyUI, average three tilings (square, wide,
tall) so that seams do not line up.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from ..model_types import VaeModel

BATCH = 4  # images per VAE call: bounds peak memory for large batches


def _run(vae: VaeModel, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
         progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    param = next(vae.vae.parameters())
    outs = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], BATCH):
            chunk = x[start:start + BATCH].to(param.device, param.dtype)
            outs.append(fn(chunk).float().cpu())
            if progress is not None:
                progress(min(start + BATCH, x.shape[0]), x.shape[0])
    return torch.cat(outs)


def decode_raw(vae: VaeModel, latent: torch.Tensor) -> torch.Tensor:
    """[B,4,h,w] raw latents -> [B,3,H,W] in -1..1 (unclamped)."""
    return vae.vae.decode(latent).sample


def encode_raw(vae: VaeModel, pixels: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] in -1..1 -> [B,4,H/f,W/f] posterior means."""
    return vae.vae.encode(pixels).latent_dist.mode()


def to_image(decoded: torch.Tensor) -> torch.Tensor:
    return ((decoded + 1.0) / 2.0).clamp(0.0, 1.0).movedim(1, -1).contiguous()


def crop_to_multiple(pixels: torch.Tensor, factor: int) -> torch.Tensor:
    """Centre-crop `[B,H,W,C]` so H and W are multiples of the VAE's factor (as ComfyUI)."""
    for dim in (1, 2):
        size = pixels.shape[dim]
        keep = (size // factor) * factor
        if keep != size:
            pixels = pixels.narrow(dim, (size % factor) // 2, keep)
    return pixels


def decode(vae: VaeModel, latent: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """ComfyUI's VAE.decode: raw latents -> IMAGE `[B,H,W,3]` 0..1."""
    return to_image(_run(vae, lambda z: decode_raw(vae, z), latent, progress))


def encode(vae: VaeModel, image: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """ComfyUI's VAE.encode: IMAGE (first 3 channels, cropped to the factor) -> raw latents."""
    pixels = crop_to_multiple(image[..., :3], vae.downscale).movedim(-1, 1) * 2.0 - 1.0
    return _run(vae, lambda x: encode_raw(vae, x), pixels, progress)


def _feather_mask(shape: torch.Size, feather: int) -> torch.Tensor:
    mask = torch.ones(shape[-2:])
    for dim in (0, 1):
        if feather >= mask.shape[dim]:
            continue
        ramp = torch.arange(1, feather + 1, dtype=torch.float32) / feather
        view = [1, 1]
        view[dim] = feather
        mask.narrow(dim, 0, feather).mul_(ramp.view(view))
        mask.narrow(dim, mask.shape[dim] - feather, feather).mul_(ramp.flip(0).view(view))
    return mask


def tiled_apply(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], tile: tuple[int, int], overlap: int,
                scale: float, out_channels: int) -> torch.Tensor:
    """Apply `fn` ([1,C,h,w] -> [1,C',h*scale,w*scale]) tile by tile and blend; tile = (height, width).

    Tiles start every (tile - overlap) cells; each result is weighted by a mask that ramps linearly
    over the overlap, and the sum is divided by the summed weights.
    """
    b, _c, h, w = x.shape
    out = torch.empty(b, out_channels, round(h * scale), round(w * scale))
    for i in range(b):
        sample = x[i:i + 1]
        if h <= tile[0] and w <= tile[1]:
            out[i:i + 1] = fn(sample)
            continue
        acc, weight = torch.zeros_like(out[i:i + 1]), torch.zeros_like(out[i:i + 1])
        starts = [range(0, size - overlap, max(1, t - overlap)) if size > t else [0] for size, t in ((h, tile[0]), (w, tile[1]))]
        for y0, x0 in itertools.product(*starts):
            y0, x0 = max(0, min(h - overlap, y0)), max(0, min(w - overlap, x0))
            part = fn(sample[:, :, y0:y0 + min(tile[0], h - y0), x0:x0 + min(tile[1], w - x0)])
            mask = _feather_mask(part.shape, round(overlap * scale))
            oy, ox = round(y0 * scale), round(x0 * scale)
            acc[:, :, oy:oy + part.shape[2], ox:ox + part.shape[3]] += part * mask
            weight[:, :, oy:oy + part.shape[2], ox:ox + part.shape[3]] += mask
        out[i:i + 1] = acc / weight
    return out


def decode_tiled(vae: VaeModel, latent: torch.Tensor, tile: int = 64, overlap: int = 8) -> torch.Tensor:
    """Tiled decode; `tile` and `overlap` are in latent cells. Returns IMAGE `[B,H,W,3]`."""
    factor = vae.downscale

    def fn(z: torch.Tensor) -> torch.Tensor:
        return _run(vae, lambda t: decode_raw(vae, t), z)

    shapes = ((tile * 2, tile // 2), (tile // 2, tile * 2), (tile, tile))  # (h, w) as ComfyUI's three passes
    total = sum(tiled_apply(latent, fn, s, overlap, factor, 3) for s in shapes) / 3.0
    return to_image(total)


def encode_tiled(vae: VaeModel, image: torch.Tensor, tile: int = 512, overlap: int = 64) -> torch.Tensor:
    """Tiled encode; `tile` and `overlap` are in pixels. Returns raw latents."""
    pixels = crop_to_multiple(image[..., :3], vae.downscale).movedim(-1, 1) * 2.0 - 1.0
    channels = vae.vae.config.latent_channels

    def fn(x: torch.Tensor) -> torch.Tensor:
        return _run(vae, lambda t: encode_raw(vae, t), x)

    shapes = ((tile, tile), (tile // 2, tile * 2), (tile * 2, tile // 2))
    return sum(tiled_apply(pixels, fn, s, overlap, 1.0 / vae.downscale, channels) for s in shapes) / 3.0

