"""Batch and simple image/mask nodes of ComfyUI's stock library, with its names, inputs and results:
EmptyImage, ImageBatch, ImageInvert, SolidMask, RebatchImages, RebatchLatents, LatentFromBatch,
RepeatLatentBatch.

IMAGE is `[B,H,W,C]` float 0..1, MASK `[B,H,W]`, LATENT `{"samples": [B,C,h,w], "noise_mask"?, "batch_index"?}`.
Outputs are new tensors and dicts: inputs are cached and shared, so they are never changed.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from engine import FLOAT, IMAGE, INT, LATENT, MASK, Input, Output, node

from .sd.resize import common_upscale

MAX_RESOLUTION = 16384
Latent = dict[str, Any]


@node("EmptyImage", category="image", display_name="EmptyImage")
class EmptyImage:
    """A batch of images filled with one colour, given as 0xRRGGBB."""

    inputs = (Input("width", INT, default=512, min=1, max=MAX_RESOLUTION, step=1),
              Input("height", INT, default=512, min=1, max=MAX_RESOLUTION, step=1),
              Input("batch_size", INT, default=1, min=1, max=4096),
              Input("color", INT, default=0, min=0, max=0xFFFFFF, step=1, extra={"display": "color"}))
    outputs = (Output(IMAGE, "IMAGE"),)

    def run(self, width: int, height: int, batch_size: int = 1, color: int = 0) -> tuple[torch.Tensor]:
        rgb = torch.tensor([(color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF], dtype=torch.float32) / 255.0
        return (rgb.expand(batch_size, height, width, 3).clone(),)


@node("ImageBatch", category="image", display_name="Batch Images")
class ImageBatch:
    """image1 then image2 in one batch; image2 is resized (bilinear, centre crop) to image1's size."""

    inputs = (Input("image1", IMAGE), Input("image2", IMAGE))
    outputs = (Output(IMAGE, "IMAGE"),)

    def run(self, image1: torch.Tensor, image2: torch.Tensor) -> tuple[torch.Tensor]:
        if image2.shape[1:3] != image1.shape[1:3]:
            image2 = common_upscale(image2.movedim(-1, 1), image1.shape[2], image1.shape[1], "bilinear",
                                    "center").movedim(1, -1)
        channels = min(image1.shape[-1], image2.shape[-1])  # an RGBA image batched with RGB keeps RGB
        return (torch.cat((image1[..., :channels], image2[..., :channels]), dim=0),)


@node("ImageInvert", category="image", display_name="Invert Image")
class ImageInvert:
    """1 - image."""

    inputs = (Input("image", IMAGE),)
    outputs = (Output(IMAGE, "IMAGE"),)

    def run(self, image: torch.Tensor) -> tuple[torch.Tensor]:
        return (1.0 - image,)


@node("SolidMask", category="mask", display_name="SolidMask")
class SolidMask:
    """A `[1,height,width]` mask filled with `value`."""

    inputs = (Input("value", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01),
              Input("width", INT, default=512, min=1, max=MAX_RESOLUTION, step=1),
              Input("height", INT, default=512, min=1, max=MAX_RESOLUTION, step=1))
    outputs = (Output(MASK, "MASK"),)

    def run(self, value: float, width: int, height: int) -> tuple[torch.Tensor]:
        return (torch.full((1, height, width), value, dtype=torch.float32),)


@node("RebatchImages", category="image/batch", display_name="Rebatch Images", input_is_list=True)
class RebatchImages:
    """Every image of every input batch, in order, regrouped into batches of `batch_size` (a list output)."""

    inputs = (Input("images", IMAGE), Input("batch_size", INT, default=1, min=1, max=4096))
    outputs = (Output(IMAGE, "IMAGE", is_list=True),)

    def run(self, images: list[torch.Tensor], batch_size: list[int]) -> tuple[list[torch.Tensor]]:
        size = batch_size[0]
        frames = [image[i:i + 1] for image in images for i in range(image.shape[0])]
        return ([torch.cat(frames[i:i + size], dim=0) for i in range(0, len(frames), size)],)


@node("RebatchLatents", category="latent/batch", display_name="Rebatch Latents", input_is_list=True)
class RebatchLatents:
    """Latents regrouped into batches of `batch_size`. Consecutive latents of one size are joined first;
    a size change starts a new batch. Each batch carries its noise_mask (dropped when all ones) and
    batch_index (the running sample number when the input had none)."""

    inputs = (Input("latents", LATENT), Input("batch_size", INT, default=1, min=1, max=4096))
    outputs = (Output(LATENT, "LATENT", is_list=True),)

    def run(self, latents: list[Latent], batch_size: list[int]) -> tuple[list[Latent]]:
        size = batch_size[0]
        runs: list[list[tuple[torch.Tensor, torch.Tensor, list[int]]]] = []
        seen = 0
        for latent in latents:
            part = _with_mask_and_index(latent, seen)
            seen += len(part[2])
            if runs and runs[-1][0][0].shape[-2:] == part[0].shape[-2:]:
                runs[-1].append(part)
            else:
                runs.append([part])
        out = []
        for run in runs:
            samples = torch.cat([p[0] for p in run])
            masks = torch.cat([p[1] for p in run])
            index = [i for p in run for i in p[2]]
            for start in range(0, samples.shape[0], size):
                batch = {"samples": samples[start:start + size], "noise_mask": masks[start:start + size],
                         "batch_index": index[start:start + size]}
                if batch["noise_mask"].mean() == 1.0:
                    del batch["noise_mask"]
                out.append(batch)
        return (out,)


def _with_mask_and_index(latent: Latent, offset: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """(samples, a `[B,1,8h,8w]` mask (ones when absent, resized bilinear, repeated to B), batch_index)."""
    samples = latent["samples"]
    b, _, h, w = samples.shape
    mask = latent.get("noise_mask")
    mask = torch.ones((b, 1, h * 8, w * 8)) if mask is None else mask.reshape((-1, 1) + tuple(mask.shape[-2:]))
    if mask.shape[-2:] != (h * 8, w * 8):
        mask = F.interpolate(mask, size=(h * 8, w * 8), mode="bilinear")
    if mask.shape[0] < b:
        mask = mask.repeat(math.ceil(b / mask.shape[0]), 1, 1, 1)[:b]
    index = list(latent.get("batch_index", range(offset, offset + b)))
    return samples, mask, index


@node("LatentFromBatch", category="latent/batch", display_name="Latent From Batch")
class LatentFromBatch:
    """`length` latents starting at `batch_index` (both clamped to the batch), with their noise_mask and
    batch_index."""

    inputs = (Input("samples", LATENT), Input("batch_index", INT, default=0, min=0, max=63),
              Input("length", INT, default=1, min=1, max=64))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, samples: Latent, batch_index: int, length: int) -> tuple[Latent]:
        out = dict(samples)
        source = samples["samples"]
        start = min(source.shape[0] - 1, batch_index)
        length = min(source.shape[0] - start, length)
        out["samples"] = source[start:start + length].clone()
        mask = samples.get("noise_mask")
        if mask is not None and mask.shape[0] > 1:
            if mask.shape[0] < source.shape[0]:
                mask = mask.repeat(math.ceil(source.shape[0] / mask.shape[0]), *([1] * (mask.dim() - 1)))
                mask = mask[:source.shape[0]]
            out["noise_mask"] = mask[start:start + length].clone()
        if "batch_index" in samples:
            out["batch_index"] = list(samples["batch_index"][start:start + length])
        else:
            out["batch_index"] = list(range(start, start + length))
        return (out,)


@node("RepeatLatentBatch", category="latent/batch", display_name="Repeat Latent Batch")
class RepeatLatentBatch:
    """The batch repeated `amount` times; batch_index continues past the largest index of each copy."""

    inputs = (Input("samples", LATENT), Input("amount", INT, default=1, min=1, max=64))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, samples: Latent, amount: int) -> tuple[Latent]:
        out = dict(samples)
        source = samples["samples"]
        out["samples"] = source.repeat((amount,) + (1,) * (source.dim() - 1))
        mask = samples.get("noise_mask")
        if mask is not None and mask.shape[0] > 1:
            if mask.shape[0] < source.shape[0]:
                mask = mask.repeat(math.ceil(source.shape[0] / mask.shape[0]), *([1] * (mask.dim() - 1)))
                mask = mask[:source.shape[0]]
            out["noise_mask"] = mask.repeat((amount,) + (1,) * (mask.dim() - 1))
        if "batch_index" in samples:
            index = list(samples["batch_index"])
            offset = max(index) - min(index) + 1
            out["batch_index"] = index + [x + i * offset for i in range(1, amount) for x in index]
        return (out,)


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (EmptyImage, ImageBatch, ImageInvert, SolidMask, RebatchImages,
                                                       RebatchLatents, LatentFromBatch, RepeatLatentBatch)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
