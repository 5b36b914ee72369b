"""Latent nodes: EmptyLatentImage, LatentUpscale, LatentUpscaleBy, LatentComposite and the VAE nodes
(VAEDecode, VAEEncode, their tiled forms, VAEEncodeForInpaint), with ComfyUI's names and semantics.

LATENT is `{"samples": [B,4,H/8,W/8], ...}` holding raw VAE latents (see DiffusionModel.latent_scale);
outputs are new dicts, the extra keys of an input latent (noise_mask, batch_index) are carried over.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from engine import COMBO, FLOAT, IMAGE, INT, LATENT, MASK, VAE, Input, Output, RunContext, node

from .model_types import VaeModel
from .sd import vae as vae_ops
from .sd.resize import CROP_METHODS, LATENT_METHODS, common_upscale

MAX_RESOLUTION = 16384
Latent = dict[str, Any]


def _progress(ctx: RunContext | None) -> Any:
    return None if ctx is None else (lambda done, total: ctx.progress(done, total))


@node("EmptyLatentImage", category="latent", display_name="Empty Latent Image")
class EmptyLatentImage:
    """A batch of zero latents for an image of width x height (latent = image size / 8)."""

    inputs = (Input("width", INT, default=512, min=16, max=MAX_RESOLUTION, step=8),
              Input("height", INT, default=512, min=16, max=MAX_RESOLUTION, step=8),
              Input("batch_size", INT, default=1, min=1, max=4096))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, width: int, height: int, batch_size: int = 1) -> tuple[Latent]:
        return ({"samples": torch.zeros([batch_size, 4, height // 8, width // 8])},)


@node("LatentUpscale", category="latent", display_name="Upscale Latent")
class LatentUpscale:
    """Resizes latents to the latent size of a width x height image (0 keeps the aspect ratio)."""

    inputs = (Input("samples", LATENT), Input("upscale_method", COMBO, options=LATENT_METHODS, default="nearest-exact"),
              Input("width", INT, default=512, min=0, max=MAX_RESOLUTION, step=8),
              Input("height", INT, default=512, min=0, max=MAX_RESOLUTION, step=8),
              Input("crop", COMBO, options=CROP_METHODS, default="disabled"))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, samples: Latent, upscale_method: str, width: int, height: int, crop: str) -> tuple[Latent]:
        if width == 0 and height == 0:
            return (samples,)
        s = samples["samples"]
        if width == 0:
            height = max(64, height)
            width = max(64, round(s.shape[-1] * height / s.shape[-2]))
        elif height == 0:
            width = max(64, width)
            height = max(64, round(s.shape[-2] * width / s.shape[-1]))
        else:
            width, height = max(64, width), max(64, height)
        return ({**samples, "samples": common_upscale(s, width // 8, height // 8, upscale_method, crop)},)


@node("LatentUpscaleBy", category="latent", display_name="Upscale Latent By")
class LatentUpscaleBy:
    """Resizes latents by a factor."""

    inputs = (Input("samples", LATENT), Input("upscale_method", COMBO, options=LATENT_METHODS, default="nearest-exact"),
              Input("scale_by", FLOAT, default=1.5, min=0.01, max=8.0, step=0.01))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, samples: Latent, upscale_method: str, scale_by: float) -> tuple[Latent]:
        s = samples["samples"]
        width, height = round(s.shape[-1] * scale_by), round(s.shape[-2] * scale_by)
        return ({**samples, "samples": common_upscale(s, width, height, upscale_method, "disabled")},)


@node("LatentComposite", category="latent", display_name="Latent Composite")
class LatentComposite:
    """Pastes samples_from into samples_to at (x, y) pixels, optionally feathering the edges."""

    inputs = (Input("samples_to", LATENT), Input("samples_from", LATENT),
              Input("x", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("y", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("feather", INT, default=0, min=0, max=MAX_RESOLUTION, step=8))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, samples_to: Latent, samples_from: Latent, x: int, y: int, feather: int) -> tuple[Latent]:
        x, y, feather = x // 8, y // 8, feather // 8
        dst = samples_to["samples"]
        out = dst.clone()
        src = samples_from["samples"][:, :, :max(dst.shape[2] - y, 0), :max(dst.shape[3] - x, 0)]
        h, w = src.shape[2], src.shape[3]
        region = out[:, :, y:y + h, x:x + w]
        if feather == 0:
            region[:] = src
        else:
            mask = torch.ones_like(src)
            ramp = torch.arange(1, feather + 1, dtype=src.dtype) / feather
            for t in range(feather):
                if y != 0:
                    mask[:, :, t] *= ramp[t]
                if y + h < dst.shape[2]:
                    mask[:, :, h - 1 - t] *= ramp[t]
                if x != 0:
                    mask[:, :, :, t] *= ramp[t]
                if x + w < dst.shape[3]:
                    mask[:, :, :, w - 1 - t] *= ramp[t]
            region[:] = src * mask + region * (1.0 - mask)
        return ({**samples_to, "samples": out},)


@node("VAEDecode", category="latent", display_name="VAE Decode")
class VAEDecode:
    """Decodes latents into images."""

    inputs = (Input("samples", LATENT, tooltip="The latent to be decoded."),
              Input("vae", VAE, tooltip="The VAE model used for decoding the latent."))
    outputs = (Output(IMAGE, "IMAGE", "The decoded image."),)

    def run(self, samples: Latent, vae: VaeModel, ctx: RunContext | None = None) -> tuple[torch.Tensor]:
        return (vae_ops.decode(vae, samples["samples"], _progress(ctx)),)


@node("VAEDecodeTiled", category="_for_testing", display_name="VAE Decode (Tiled)")
class VAEDecodeTiled:
    """Decodes latents tile by tile (sizes in pixels), for images too large to decode at once."""

    inputs = (Input("samples", LATENT), Input("vae", VAE),
              Input("tile_size", INT, default=512, min=64, max=4096, step=32),
              Input("overlap", INT, default=64, min=0, max=4096, step=32),
              Input("temporal_size", INT, default=64, min=8, max=4096, step=4,
                    tooltip="Only used for video VAEs: Amount of frames to decode at a time."),
              Input("temporal_overlap", INT, default=8, min=4, max=4096, step=4,
                    tooltip="Only used for video VAEs: Amount of frames to overlap."))
    outputs = (Output(IMAGE, "IMAGE"),)

    def run(self, samples: Latent, vae: VaeModel, tile_size: int, overlap: int = 64, temporal_size: int = 64,
            temporal_overlap: int = 8) -> tuple[torch.Tensor]:
        if tile_size < overlap * 4:
            overlap = tile_size // 4
        factor = vae.downscale
        return (vae_ops.decode_tiled(vae, samples["samples"], tile_size // factor, overlap // factor),)


@node("VAEEncode", category="latent", display_name="VAE Encode")
class VAEEncode:
    """Encodes images into latents (the first three channels; sizes cropped to multiples of 8)."""

    inputs = (Input("pixels", IMAGE), Input("vae", VAE))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, pixels: torch.Tensor, vae: VaeModel, ctx: RunContext | None = None) -> tuple[Latent]:
        return ({"samples": vae_ops.encode(vae, pixels, _progress(ctx))},)


@node("VAEEncodeTiled", category="_for_testing", display_name="VAE Encode (Tiled)")
class VAEEncodeTiled:
    """Encodes images tile by tile (sizes in pixels)."""

    inputs = (Input("pixels", IMAGE), Input("vae", VAE),
              Input("tile_size", INT, default=512, min=64, max=4096, step=64),
              Input("overlap", INT, default=64, min=0, max=4096, step=32),
              Input("temporal_size", INT, default=64, min=8, max=4096, step=4),
              Input("temporal_overlap", INT, default=8, min=4, max=4096, step=4))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, pixels: torch.Tensor, vae: VaeModel, tile_size: int, overlap: int = 64, temporal_size: int = 64,
            temporal_overlap: int = 8) -> tuple[Latent]:
        if tile_size < overlap * 4:  # as VAEDecodeTiled: the half-size tiles must still advance
            overlap = tile_size // 4
        return ({"samples": vae_ops.encode_tiled(vae, pixels, tile_size, overlap)},)


@node("VAEEncodeForInpaint", category="latent/inpaint", display_name="VAE Encode (for Inpainting)")
class VAEEncodeForInpaint:
    """Encodes images with the masked area greyed out and returns the (grown) mask as noise_mask."""

    inputs = (Input("pixels", IMAGE), Input("vae", VAE), Input("mask", MASK),
              Input("grow_mask_by", INT, default=6, min=0, max=64, step=1))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, pixels: torch.Tensor, vae: VaeModel, mask: torch.Tensor, grow_mask_by: int = 6) -> tuple[Latent]:
        f = vae.downscale
        h, w = (pixels.shape[1] // f) * f, (pixels.shape[2] // f) * f
        mask = F.interpolate(mask.reshape(-1, 1, mask.shape[-2], mask.shape[-1]).float(),
                             size=(pixels.shape[1], pixels.shape[2]), mode="bilinear")
        oy, ox = (pixels.shape[1] % f) // 2, (pixels.shape[2] % f) // 2
        pixels = pixels[:, oy:oy + h, ox:ox + w, :3].clone()
        mask = mask[:, :, oy:oy + h, ox:ox + w]
        if grow_mask_by == 0:
            grown = mask
        else:
            kernel = torch.ones((1, 1, grow_mask_by, grow_mask_by))
            pad = math.ceil((grow_mask_by - 1) / 2)
            grown = torch.clamp(F.conv2d(mask.round(), kernel, padding=pad), 0, 1)
        keep = (1.0 - mask.round()).squeeze(1)[..., None]
        pixels = (pixels - 0.5) * keep + 0.5
        latent = vae_ops.encode(vae, pixels)
        return ({"samples": latent, "noise_mask": grown[:, :, :h, :w].round()},)


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (EmptyLatentImage, LatentUpscale, LatentUpscaleBy,
                                                       LatentComposite, VAEDecode, VAEDecodeTiled, VAEEncode,
                                                       VAEEncodeTiled, VAEEncodeForInpaint)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
