"""A minimal sampler and scorer for the demo model, used while training (before and beside the nodes).

DDIM (eta 0) with classifier-free guidance on the diffusers modules directly; the shipped model is
judged through the real nodes in the tests, this loop only tracks progress and draws snapshot grids.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from nodes.demo import checker
from nodes.demo.dataset import Scene
from nodes.demo.models import RESOLUTION, SCALING_FACTOR, SCHEDULE, token_ids


@torch.no_grad()
def encode_prompts(clip: Any, tokenizer: Any, prompts: list[str]) -> torch.Tensor:
    return clip(token_ids(tokenizer, prompts)).last_hidden_state


@torch.no_grad()
def sample_images(unet: Any, vae: Any, clip: Any, tokenizer: Any, prompts: list[str], seed: int = 0,
                  steps: int = 20, cfg: float = 5.0) -> np.ndarray:
    """Generate one image per prompt: float array [N, H, W, 3] in 0..1."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    sched.set_timesteps(steps)
    cond = encode_prompts(clip, tokenizer, prompts)
    uncond = encode_prompts(clip, tokenizer, [""]).expand_as(cond)
    gen = torch.Generator().manual_seed(seed)
    # Not unet.config.sample_size: a loaded checkpoint's config says 64 (SD1's), whatever it was trained at.
    size = RESOLUTION // 2 ** (len(vae.config.block_out_channels) - 1)
    latents = torch.randn(len(prompts), 4, size, size, generator=gen)
    for t in sched.timesteps:
        eps = unet(torch.cat([latents, latents]), t, torch.cat([uncond, cond])).sample
        eps_u, eps_c = eps.chunk(2)
        latents = sched.step(eps_u + cfg * (eps_c - eps_u), t, latents).prev_sample
    pixels = vae.decode(latents / SCALING_FACTOR).sample
    return ((pixels + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def score(images: np.ndarray, scenes: Sequence[Scene]) -> dict[str, float]:
    """Fraction of images whose checker reading agrees with the prompt, per attribute."""
    hits = {"background": 0, "colour": 0, "kind": 0}
    for image, scene in zip(images, scenes, strict=True):
        reading = checker.read_image(image)
        hits["background"] += reading.background == scene.background
        hits["colour"] += reading.colour == scene.colour
        hits["kind"] += reading.kind == scene.kind
    return {k: v / max(1, len(scenes)) for k, v in hits.items()}


def grid(images: np.ndarray, columns: int = 8, scale: int = 2) -> Image.Image:
    """Tile [N, H, W, 3] 0..1 images into one picture, each enlarged `scale` times (nearest)."""
    n, h, w, _ = images.shape
    rows = (n + columns - 1) // columns
    sheet = np.ones((rows * (h + 2), columns * (w + 2), 3), dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * (h + 2) + 1: r * (h + 2) + 1 + h, c * (w + 2) + 1: c * (w + 2) + 1 + w] = image
    pic = Image.fromarray((sheet * 255).round().astype(np.uint8))
    return pic.resize((pic.width * scale, pic.height * scale), Image.Resampling.NEAREST)
