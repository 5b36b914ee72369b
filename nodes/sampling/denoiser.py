"""The denoiser D(x; sigma): an eps/v-prediction UNet with classifier-free guidance, as samplers see it.

`Denoiser.predict` runs the UNet over every active conditioning entry (cond and uncond batched into
as few calls as shapes allow) and returns the weighted-average raw outputs; `Denoiser(x, sigma)`
turns them into the guided x0 estimate uncond + cfg * (cond - uncond) (Ho & Salimans 2022), honouring
a model's "sampler_cfg_function" / "sampler_post_cfg_function" patches. `InpaintDenoiser` pins the
unmasked part of the latent to the original image (ComfyUI's KSamplerX0Inpaint).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch
import torch.nn.functional as F

from .callbacks import SamplingState
from .conditioning import CondEntry, mirror_areas, repeat_to_batch, resolve
from .model_sampling import ModelSampling


def _lcm_contexts(contexts: list[torch.Tensor]) -> list[torch.Tensor]:
    """Repeat token sequences to a common length; attention over repeated keys is unchanged."""
    lengths = {c.shape[1] for c in contexts}
    if len(lengths) == 1:
        return contexts
    target = math.lcm(*lengths)
    return [c.repeat(1, target // c.shape[1], 1) for c in contexts]


class Denoiser:
    """Guided x0 prediction for one sampling run (the model, its conditioning and a SamplingState)."""

    def __init__(self, model: Any, ms: ModelSampling, positive: Any, negative: Any, state: SamplingState,
                 latent_shape: tuple[int, ...], ctx: Any = None):
        self.model, self.ms, self.state, self.ctx = model, ms, state, ctx
        self.batch = int(latent_shape[0])
        device = model.device
        self.cond = resolve(positive, latent_shape, ms, "positive", device)
        self.uncond = mirror_areas(self.cond, resolve(negative, latent_shape, ms, "negative", device))
        self.options = dict(model.options)

    def _unet(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.ctx is not None:
            self.ctx.check_cancelled()  # a cancel lands before the next UNet call, within one step
        unet = self.model.unet
        dtype = self.model.dtype
        out = unet(x.to(dtype), t.to(x.device), encoder_hidden_states=context.to(dtype), return_dict=False)[0]
        return out.float()

    def predict(self, x_in: torch.Tensor, t: torch.Tensor, sigma: float,
                with_uncond: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Raw UNet outputs (eps or v) for cond and uncond at scaled input `x_in` and timestep `t`,
        each the weighted average over that side's active entries (None for uncond when skipped)."""
        jobs: list[tuple[int, CondEntry]] = [(0, e) for e in self.cond if e.active(sigma)]
        if with_uncond:
            jobs += [(1, e) for e in self.uncond if e.active(sigma)]
        sums = [torch.zeros_like(x_in), torch.zeros_like(x_in)]
        counts = [torch.full_like(x_in, 1e-37), torch.full_like(x_in, 1e-37)]
        groups: dict[tuple[int, int], list[tuple[int, CondEntry]]] = defaultdict(list)
        for job in jobs:
            groups[job[1].area[:2]].append(job)
        t = t.reshape(-1).expand(self.batch) if t.numel() == 1 else t
        for group in groups.values():
            crops = [x_in[:, :, y:y + h, x:x + w] for _, e in group for h, w, y, x in [e.area]]
            contexts = _lcm_contexts([repeat_to_batch(e.context, self.batch) for _, e in group])
            out = self._unet(torch.cat(crops), t.repeat(len(group)), torch.cat(contexts))
            for (side, e), o in zip(group, out.chunk(len(group)), strict=True):
                h, w, y, x = e.area
                weight = repeat_to_batch(e.weight, self.batch)
                sums[side][:, :, y:y + h, x:x + w] += o * weight
                counts[side][:, :, y:y + h, x:x + w] += weight
        cond = sums[0] / counts[0]
        return cond, (sums[1] / counts[1] if with_uncond else None)

    def wants_uncond(self, cfg: float) -> bool:
        return not (math.isclose(cfg, 1.0) and "sampler_cfg_function" not in self.options
                    and not self.options.get("disable_cfg1_optimization", False))

    def guided_output(self, x_in: torch.Tensor, t: torch.Tensor, sigma: float) -> torch.Tensor:
        """uncond + cfg * (cond - uncond) on raw outputs (for the diffusers schedulers' loop)."""
        cfg = self.state.cfg
        cond, uncond = self.predict(x_in, t, sigma, self.wants_uncond(cfg))
        return cond if uncond is None else uncond + (cond - uncond) * cfg

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(())
        t = self.ms.timestep(sigma.cpu()).to(x.device)
        self.state.last_timestep = float(t)
        cfg = self.state.cfg
        cond, uncond = self.predict(x * self.ms.input_scale(sigma), t, float(sigma), self.wants_uncond(cfg))
        cond_d = self.ms.denoised(sigma, cond, x)
        uncond_d = self.ms.denoised(sigma, uncond, x) if uncond is not None else None
        return self._combine(x, sigma, cfg, cond_d, uncond_d)

    def _combine(self, x: torch.Tensor, sigma: torch.Tensor, cfg: float, cond_d: torch.Tensor,
                 uncond_d: torch.Tensor | None) -> torch.Tensor:
        sigma_b = sigma.expand(x.shape[0])
        cfg_function = self.options.get("sampler_cfg_function")
        if cfg_function is not None:  # ComfyUI's patch protocol: works on x - denoised ("noise" units)
            args = {"cond": x - cond_d, "uncond": x - uncond_d, "cond_scale": cfg, "timestep": sigma_b,
                    "input": x, "sigma": sigma_b, "cond_denoised": cond_d, "uncond_denoised": uncond_d,
                    "model": self.model, "model_options": self.options}
            out = x - cfg_function(args)
        elif uncond_d is None:
            out = cond_d
        else:
            out = uncond_d + (cond_d - uncond_d) * cfg
        for post in self.options.get("sampler_post_cfg_function", ()):
            out = post({"denoised": out, "cond": None, "uncond": None, "model": self.model,
                        "uncond_denoised": uncond_d, "cond_denoised": cond_d, "sigma": sigma_b,
                        "model_options": self.options, "input": x, "cond_scale": cfg})
        return out


class InpaintDenoiser:
    """Keep the unmasked region on the original image's noisy trajectory (mask 1 = repaint)."""

    def __init__(self, inner: Denoiser, mask: torch.Tensor, latent: torch.Tensor, noise: torch.Tensor):
        self.inner, self.mask, self.latent, self.noise = inner, mask, latent, noise
        self.state = inner.state

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        keep = 1.0 - self.mask
        x = x * self.mask + (self.latent + self.noise * sigma) * keep
        return self.inner(x, sigma) * self.mask + self.latent * keep


def prepare_mask(noise_mask: torch.Tensor, shape: tuple[int, ...], device: Any) -> torch.Tensor:
    """A LATENT's noise_mask ([B,H,W] or [B,1,H,W], any size) -> [B,C,h,w] on the latent grid."""
    mask = noise_mask.float().reshape((-1, 1) + tuple(noise_mask.shape[-2:]))
    mask = F.interpolate(mask, size=tuple(shape[2:]), mode="bilinear")
    mask = mask.expand(-1, shape[1], -1, -1)
    return repeat_to_batch(mask, shape[0]).to(device)
