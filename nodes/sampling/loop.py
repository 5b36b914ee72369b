"""The sampling run: noise + latent + sigmas + sampler + guided denoiser -> denoised latent.

Steps of `sample`: (1) scale the LATENT's raw latents into the model's space (x latent_scale), (2) add
the noise at sigmas[0], (3) build the guided denoiser (inpainting-masked when the latent has a noise
mask), (4) run the sampler with step hooks (callbacks, progress, cancel, previews), (5) scale back.
`ksampler_sigmas` is KSampler's choice of sigmas for steps/denoise/start/end (ComfyUI's semantics).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .callbacks import SamplingState, StepHooks, StepInfo
from .denoiser import Denoiser, InpaintDenoiser, prepare_mask
from .model_sampling import ModelSampling
from .preview import previews_wanted
from .samplers import DISCARD_PENULTIMATE_SIGMA, Sampler
from .schedules import calculate_sigmas


@dataclass(frozen=True)
class SampleResult:
    """`samples`: the final latents; `denoised`: the last x0 prediction (both raw LATENT space, CPU)."""

    samples: torch.Tensor
    denoised: torch.Tensor


def model_sampling(model: Any) -> ModelSampling:
    return ModelSampling.from_config(model.scheduler_config)


def ksampler_sigmas(model: Any, sampler_name: str, scheduler: str, steps: int, denoise: float = 1.0,
                    start_step: int | None = None, last_step: int | None = None,
                    force_full_denoise: bool = False) -> torch.Tensor:
    """KSampler's sigmas: `denoise` < 1 keeps the last steps of a longer schedule (img2img); start/last
    step cut the list (KSamplerAdvanced); `force_full_denoise` ends a cut list at sigma 0."""
    ms = model_sampling(model)

    def schedule(n: int) -> torch.Tensor:
        if sampler_name in DISCARD_PENULTIMATE_SIGMA:
            sigmas = calculate_sigmas(ms, scheduler, n + 1)
            return torch.cat([sigmas[:-2], sigmas[-1:]])
        return calculate_sigmas(ms, scheduler, n)

    if denoise is None or denoise > 0.9999:
        sigmas = schedule(steps)
    elif denoise <= 0.0:
        sigmas = torch.zeros(0)
    else:
        sigmas = schedule(int(steps / denoise))[-(steps + 1):]
    if last_step is not None and last_step < len(sigmas) - 1:
        sigmas = sigmas[:last_step + 1].clone()
        if force_full_denoise:
            sigmas[-1] = 0
    if start_step is not None:
        sigmas = sigmas[start_step:] if start_step < len(sigmas) - 1 else torch.zeros(0)
    return sigmas


def _inpaint_noise(sampler: Sampler, noise: torch.Tensor, seed: int | None) -> torch.Tensor:
    if sampler.inpaint_fresh_noise:
        gen = torch.Generator().manual_seed(int(seed or 0) + 1)
        return torch.randn(noise.shape, generator=gen).to(noise.device)
    return noise


def sample(model: Any, noise: torch.Tensor, positive: Any, negative: Any, cfg: float, sampler: Sampler,
           sigmas: torch.Tensor, latent_image: torch.Tensor, *, noise_mask: torch.Tensor | None = None,
           seed: int | None = None, callbacks: Sequence[Callable[[StepInfo], Any]] = (), ctx: Any = None,
           step_offset: int = 0, schedule_steps: int | None = None) -> SampleResult:
    """Denoise `latent_image` (raw LATENT samples) along `sigmas`; see the module docstring.

    `seed` seeds the stochastic samplers' per-step noise; `callbacks` run after each step besides the
    model's own "step_callbacks"; `step_offset`/`schedule_steps` place these steps in a longer schedule
    (what a GuidanceSchedule's fractions count).
    """
    if len(sigmas) <= 1:
        return SampleResult(latent_image.clone(), latent_image.clone())
    ms = model_sampling(model)
    device = model.device
    scale = float(getattr(model, "latent_scale", 1.0))
    latent = latent_image.to(device, torch.float32) * scale
    noise = noise.to(device, torch.float32)
    sigmas = sigmas.to(device, torch.float32)
    state = SamplingState(base_cfg=float(cfg), total=len(sigmas) - 1, step_offset=step_offset,
                          schedule_steps=schedule_steps, schedule=model.options.get("cfg_schedule"))
    denoiser: Any = Denoiser(model, ms, positive, negative, state, tuple(latent.shape), ctx)
    if noise_mask is not None:
        mask = prepare_mask(noise_mask, tuple(latent.shape), device)
        denoiser = InpaintDenoiser(denoiser, mask, latent, _inpaint_noise(sampler, noise, seed))
    x = ms.noise_scaling(float(sigmas[0]), noise, latent, ms.is_max_denoise(float(sigmas[0])))
    hooks = StepHooks(state, tuple(model.options.get("step_callbacks", ())) + tuple(callbacks), ctx,
                      previews_wanted(ctx))
    with torch.no_grad():  # not inference_mode: downstream nodes may modify the outputs in place
        x = sampler.sample(denoiser, x, sigmas, hooks, seed)
    denoised = hooks.last_denoised if hooks.last_denoised is not None else x
    return SampleResult((x / scale).cpu(), (denoised / scale).cpu())
