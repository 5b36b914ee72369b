"""diffusers' schedulers by class name, driven the way diffusers' own Stable Diffusion pipelines drive them.

A `DiffusersSchedulerSpec` names a scheduler class and config overrides; `build` makes it with
`from_config(model.scheduler_config, **overrides)`. `sample_diffusers` runs StableDiffusionPipeline's
loop (txt2img: noise x init_noise_sigma; otherwise StableDiffusionImg2ImgPipeline's strength = denoise,
and the inpaint pipeline's re-noised blend when the latent has a noise mask), with our conditioning,
guidance, callbacks, progress and cancel around `scheduler.step`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .callbacks import SamplingState, StepHooks, StepInfo
from .denoiser import Denoiser, prepare_mask
from .loop import SampleResult, model_sampling
from .preview import previews_wanted

DIFFUSERS_SCHEDULER_NAMES = ["DDIMScheduler", "PNDMScheduler", "DPMSolverMultistepScheduler",
                             "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler",
                             "HeunDiscreteScheduler", "UniPCMultistepScheduler"]


def scheduler_class(name: str) -> type:
    if name not in DIFFUSERS_SCHEDULER_NAMES:
        raise ValueError(f"diffusers scheduler {name!r} is not one of {DIFFUSERS_SCHEDULER_NAMES}")
    import diffusers

    return getattr(diffusers, name)


def accepted_options(name: str) -> list[str]:
    """The config options `name`'s constructor takes (what from_config overrides may set)."""
    params = inspect.signature(scheduler_class(name).__init__).parameters
    return sorted(p for p in params if p not in ("self", "kwargs"))


@dataclass(frozen=True)
class DiffusersSchedulerSpec:
    """A diffusers scheduler class name, config overrides and the `eta` its step takes (DDIM)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    eta: float = 0.0

    def build(self, base_config: dict[str, Any]) -> Any:
        """`Class.from_config(base_config, **overrides)`; options the class lacks are an error."""
        cls = scheduler_class(self.name)
        accepted = set(accepted_options(self.name))
        unknown = sorted(set(self.overrides) - accepted)
        if unknown:
            raise ValueError(f"{self.name} has no option {', '.join(map(repr, unknown))}; "
                             f"it accepts: {', '.join(sorted(accepted))}")
        # Keys the class does not take are dropped here, as from_config would ignore them (noisily).
        config = {k: v for k, v in base_config.items() if k in accepted}
        scheduler = cls.from_config(config, **self.overrides)
        cfg = scheduler.config
        if self.name == "UniPCMultistepScheduler" and cfg.solver_type == "bh1" and cfg.final_sigmas_type == "zero":
            # B(h) = h is infinite on the step to sigma 0: diffusers returns NaN latents for this pair.
            raise ValueError("UniPCMultistepScheduler with solver_type 'bh1' needs final_sigmas_type 'sigma_min' "
                             "(with 'zero' diffusers produces NaN); or use solver_type 'bh2'")
        return scheduler


def _sigma_table(scheduler: Any) -> np.ndarray:
    ac = scheduler.alphas_cumprod.double().cpu().numpy()
    return ((1 - ac) / ac) ** 0.5


def _current_sigma(scheduler: Any, t: torch.Tensor, table: np.ndarray) -> float:
    """The noise level of this step: the scheduler's own sigma when it tracks one, else from abar(t)."""
    index, sigmas = getattr(scheduler, "step_index", None), getattr(scheduler, "sigmas", None)
    if index is not None and sigmas is not None and index < len(sigmas):
        return float(sigmas[index])
    return float(np.interp(float(t), np.arange(len(table)), table))


def _start(scheduler: Any, steps: int, denoise: float, latent: torch.Tensor, noise: torch.Tensor,
           txt2img: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(timesteps to run, start latents) as StableDiffusion(Img2Img)Pipeline prepares them."""
    if txt2img:
        return scheduler.timesteps, noise * scheduler.init_noise_sigma
    init = min(int(steps * denoise), steps)
    begin = max(steps - init, 0) * scheduler.order
    timesteps = scheduler.timesteps[begin:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    if len(timesteps) == 0:
        return timesteps, latent
    return timesteps, scheduler.add_noise(latent, noise, timesteps[:1].repeat(latent.shape[0]))


def _step_kwargs(scheduler: Any, spec: DiffusersSchedulerSpec, seed: int) -> dict[str, Any]:
    params = inspect.signature(scheduler.step).parameters
    kwargs: dict[str, Any] = {}
    if "generator" in params:  # as the pipelines do: a CPU generator seeded with the seed
        kwargs["generator"] = torch.Generator(device="cpu").manual_seed(int(seed))
    if "eta" in params:
        kwargs["eta"] = spec.eta
    return kwargs


def sample_diffusers(model: Any, spec: DiffusersSchedulerSpec, steps: int, noise: torch.Tensor, positive: Any,
                     negative: Any, cfg: float, latent_image: torch.Tensor, *, denoise: float = 1.0,
                     noise_mask: torch.Tensor | None = None, seed: int = 0,
                     callbacks: Sequence[Callable[[StepInfo], Any]] = (), ctx: Any = None) -> SampleResult:
    """Denoise raw LATENT samples with a diffusers scheduler; see the module docstring."""
    device = model.device
    scale = float(getattr(model, "latent_scale", 1.0))
    latent = latent_image.to(device, torch.float32) * scale
    noise = noise.to(device, torch.float32)
    scheduler = spec.build(model.scheduler_config)
    scheduler.set_timesteps(steps, device=device)
    txt2img = denoise >= 0.9999 and noise_mask is None and not bool(latent.any())
    timesteps, x = _start(scheduler, steps, denoise, latent, noise, txt2img)
    if len(timesteps) == 0:
        return SampleResult(latent_image.clone(), latent_image.clone())
    state = SamplingState(base_cfg=float(cfg), total=len(timesteps), schedule=model.options.get("cfg_schedule"))
    ms = model_sampling(model)
    denoiser = Denoiser(model, ms, positive, negative, state, tuple(latent.shape), ctx)
    hooks = StepHooks(state, tuple(model.options.get("step_callbacks", ())) + tuple(callbacks), ctx,
                      previews_wanted(ctx))
    mask = prepare_mask(noise_mask, tuple(latent.shape), device) if noise_mask is not None else None
    kwargs, table = _step_kwargs(scheduler, spec, seed), _sigma_table(scheduler)
    with torch.no_grad():  # not inference_mode: downstream nodes may modify the outputs in place
        for i, t in enumerate(timesteps):
            x_in = scheduler.scale_model_input(x, t)
            sigma = _current_sigma(scheduler, t, table)
            state.last_timestep = float(t)
            guided = denoiser.guided_output(x_in, t.reshape(1).float(), sigma)
            out = scheduler.step(guided, t, x, **kwargs, return_dict=True)
            x = out.prev_sample
            denoised = getattr(out, "pred_original_sample", None)
            if denoised is None:
                denoised = ms.denoised(torch.tensor(sigma), guided, x_in * (1 + sigma ** 2) ** 0.5)
            if mask is not None:  # StableDiffusionInpaintPipeline's blend for 4-channel UNets
                kept = latent if i == len(timesteps) - 1 else scheduler.add_noise(latent, noise, timesteps[i + 1:i + 2])
                x = (1 - mask) * kept + mask * x
            x = hooks(i, x, denoised, sigma)
    return SampleResult((x / scale).cpu(), (hooks.last_denoised / scale).cpu())
