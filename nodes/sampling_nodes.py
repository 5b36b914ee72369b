"""Sampling nodes: KSampler, KSamplerAdvanced (ComfyUI's names, inputs, defaults and semantics),
KSamplerDiffusers (diffusers' schedulers by class name) and GuidanceSchedule (cfg by step).

Diffusers schedulers are a node of their own rather than KSampler options, so KSampler's inputs stay
exactly ComfyUI's: KSamplerDiffusers takes the class name (DDIMScheduler, ... UniPCMultistepScheduler),
builds it with `from_config(model.scheduler_config, **options)` and runs diffusers' pipeline loop.

Per-step callbacks from a plugin: a node takes a MODEL and returns `model.add_step_callback(fn)`, a
clone, so the input MODEL (shared, cached) is never changed. `fn(info)` gets a
`nodes.sampling.StepInfo` (step, total, sigma, timestep, latents, denoised, cfg, fraction) after every
step of every sampler and may return {"latents": tensor} and/or {"cfg": float}. Example:

    @node("ZeroLatentsAtStep", category="sampling")
    class ZeroLatentsAtStep:
        inputs = (Input("model", MODEL), Input("step", INT, default=5, min=0))
        outputs = (Output(MODEL, "MODEL"),)
        def run(self, model, step):
            return (model.add_step_callback(lambda i: {"latents": i.latents * 0} if i.step == step else None),)
"""
from __future__ import annotations

import json
from typing import Any

import torch

from engine import BOOLEAN, COMBO, CONDITIONING, FLOAT, INT, LATENT, MODEL, STRING, Input, Output, RunContext, node

from .sampling import (
    DIFFUSERS_SCHEDULER_NAMES,
    SAMPLER_NAMES,
    SCHEDULER_NAMES,
    DiffusersSchedulerSpec,
    GuidanceSchedule,
    ksampler_sigmas,
    prepare_noise,
    sample,
    sample_diffusers,
    sampler_object,
)

MAX_SEED = 0xFFFFFFFFFFFFFFFF
Latent = dict[str, Any]
SIGMA_SCHEDULE_FLAGS = {"karras": "use_karras_sigmas", "exponential": "use_exponential_sigmas",
                        "beta": "use_beta_sigmas"}
TIMESTEP_SPACINGS = ["default", "linspace", "leading", "trailing"]
ALGORITHM_TYPES = ["default", "dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver"]


def _seed_input(name: str) -> Input:
    return Input(name, INT, default=0, min=0, max=MAX_SEED, control_after_generate=True,
                 tooltip="The random seed of the noise.")


def _cfg_input() -> Input:
    return Input("cfg", FLOAT, default=8.0, min=0.0, max=100.0, step=0.1, extra={"round": 0.01},
                 tooltip="Classifier-free guidance scale: uncond + cfg * (cond - uncond).")


def common_ksampler(model: Any, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
                    positive: Any, negative: Any, latent: Latent, denoise: float = 1.0, disable_noise: bool = False,
                    start_step: int | None = None, last_step: int | None = None, force_full_denoise: bool = False,
                    ctx: RunContext | None = None) -> tuple[Latent]:
    """ComfyUI's common_ksampler: noise from `seed` over the whole batch, KSampler's sigmas, sample."""
    samples = latent["samples"]
    noise = (torch.zeros(samples.shape, dtype=torch.float32) if disable_noise
             else prepare_noise(samples, seed, latent.get("batch_index")))
    sigmas = ksampler_sigmas(model, sampler_name, scheduler, steps, denoise, start_step, last_step,
                             force_full_denoise)
    result = sample(model, noise, positive, negative, cfg, sampler_object(sampler_name), sigmas, samples,
                    noise_mask=latent.get("noise_mask"), seed=seed, ctx=ctx, step_offset=start_step or 0,
                    schedule_steps=steps)
    return ({**latent, "samples": result.samples},)


@node("KSampler", category="sampling", display_name="KSampler")
class KSampler:
    """Denoises a latent with a model, positive and negative conditioning, a sampler and a schedule;
    denoise < 1 starts part-way (image-to-image)."""

    inputs = (Input("model", MODEL), _seed_input("seed"),
              Input("steps", INT, default=20, min=1, max=10000),
              _cfg_input(),
              Input("sampler_name", COMBO, options=SAMPLER_NAMES),
              Input("scheduler", COMBO, options=SCHEDULER_NAMES),
              Input("positive", CONDITIONING), Input("negative", CONDITIONING), Input("latent_image", LATENT),
              Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, model: Any, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str, positive: Any,
            negative: Any, latent_image: Latent, denoise: float = 1.0, ctx: RunContext | None = None) -> tuple[Latent]:
        return common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                               denoise=denoise, ctx=ctx)


@node("KSamplerAdvanced", category="sampling", display_name="KSampler (Advanced)")
class KSamplerAdvanced:
    """KSampler over steps start_at_step..end_at_step of a `steps`-step schedule, optionally without
    adding noise and returning the latent with its leftover noise (for chaining samplers)."""

    inputs = (Input("model", MODEL), Input("add_noise", COMBO, options=["enable", "disable"]),
              _seed_input("noise_seed"),
              Input("steps", INT, default=20, min=1, max=10000),
              _cfg_input(),
              Input("sampler_name", COMBO, options=SAMPLER_NAMES),
              Input("scheduler", COMBO, options=SCHEDULER_NAMES),
              Input("positive", CONDITIONING), Input("negative", CONDITIONING), Input("latent_image", LATENT),
              Input("start_at_step", INT, default=0, min=0, max=10000),
              Input("end_at_step", INT, default=10000, min=0, max=10000),
              Input("return_with_leftover_noise", COMBO, options=["disable", "enable"]))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, model: Any, add_noise: str, noise_seed: int, steps: int, cfg: float, sampler_name: str,
            scheduler: str, positive: Any, negative: Any, latent_image: Latent, start_at_step: int,
            end_at_step: int, return_with_leftover_noise: str, ctx: RunContext | None = None) -> tuple[Latent]:
        return common_ksampler(model, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
                               latent_image, denoise=1.0, disable_noise=add_noise == "disable",
                               start_step=start_at_step, last_step=end_at_step,
                               force_full_denoise=return_with_leftover_noise != "enable", ctx=ctx)


def diffusers_spec(scheduler: str, sigma_schedule: str = "default", timestep_spacing: str = "default",
                   algorithm_type: str = "default", solver_order: int = 0, eta: float = 0.0,
                   extra_config: str = "") -> DiffusersSchedulerSpec:
    """The scheduler spec for KSamplerDiffusers' options ("default"/0 leave the model's config alone)."""
    overrides: dict[str, Any] = {}
    if sigma_schedule != "default":
        overrides[SIGMA_SCHEDULE_FLAGS[sigma_schedule]] = True
    if timestep_spacing != "default":
        overrides["timestep_spacing"] = timestep_spacing
    if algorithm_type != "default":
        overrides["algorithm_type"] = algorithm_type
    if solver_order > 0:
        overrides["solver_order"] = int(solver_order)
    if extra_config.strip():
        try:
            extra = json.loads(extra_config)
        except json.JSONDecodeError as exc:
            raise ValueError(f"extra_config is not JSON ({exc.msg}); write e.g. {{\"final_sigmas_type\": \"zero\"}}") from None
        if not isinstance(extra, dict):
            raise ValueError("extra_config must be a JSON object of scheduler options")
        overrides.update(extra)
    return DiffusersSchedulerSpec(scheduler, overrides, eta)


@node("KSamplerDiffusers", category="sampling", display_name="KSampler (diffusers scheduler)")
class KSamplerDiffusers:
    """Samples with a diffusers scheduler class built from the model's scheduler config (the seed's
    swappable scheduler): the same latents as diffusers' own Stable Diffusion pipeline loop."""

    inputs = (Input("model", MODEL), _seed_input("seed"),
              Input("steps", INT, default=20, min=1, max=10000), _cfg_input(),
              Input("scheduler", COMBO, options=DIFFUSERS_SCHEDULER_NAMES, default="EulerDiscreteScheduler"),
              Input("positive", CONDITIONING), Input("negative", CONDITIONING), Input("latent_image", LATENT),
              Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01),
              Input("sigma_schedule", COMBO, options=["default", *SIGMA_SCHEDULE_FLAGS], default="default",
                    tooltip="use_karras_sigmas / use_exponential_sigmas / use_beta_sigmas"),
              Input("timestep_spacing", COMBO, options=TIMESTEP_SPACINGS, default="default"),
              Input("algorithm_type", COMBO, options=ALGORITHM_TYPES, default="default",
                    tooltip="DPMSolverMultistepScheduler only"),
              Input("solver_order", INT, default=0, min=0, max=3, tooltip="0 keeps the scheduler's default"),
              Input("eta", FLOAT, default=0.0, min=0.0, max=1.0, step=0.01, tooltip="DDIM's eta"),
              Input("extra_config", STRING, default="", multiline=True,
                    tooltip='More from_config options as JSON, e.g. {"final_sigmas_type": "zero"}'))
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, model: Any, seed: int, steps: int, cfg: float, scheduler: str, positive: Any, negative: Any,
            latent_image: Latent, denoise: float, sigma_schedule: str, timestep_spacing: str, algorithm_type: str,
            solver_order: int, eta: float, extra_config: str, ctx: RunContext | None = None) -> tuple[Latent]:
        spec = diffusers_spec(scheduler, sigma_schedule, timestep_spacing, algorithm_type, solver_order, eta,
                              extra_config)
        samples = latent_image["samples"]
        noise = prepare_noise(samples, seed, latent_image.get("batch_index"))
        result = sample_diffusers(model, spec, steps, noise, positive, negative, cfg, samples, denoise=denoise,
                                  noise_mask=latent_image.get("noise_mask"), seed=seed, ctx=ctx)
        return ({**latent_image, "samples": result.samples},)


@node("GuidanceSchedule", category="sampling", display_name="Guidance Schedule (cfg by step)")
class GuidanceScheduleNode:
    """A MODEL whose samplers change the cfg scale as sampling progresses: "fraction:cfg" pairs, e.g.
    the default's cfg 10 for the first 30% of steps, 7.5 up to 60%, then 5 (the input MODEL is unchanged)."""

    inputs = (Input("model", MODEL),
              Input("schedule", STRING, default="0.0:10.0, 0.3:7.5, 0.6:5.0",
                    tooltip="fraction_of_steps:cfg pairs; a step uses the last pair it has reached"),
              Input("enabled", BOOLEAN, default=True))
    outputs = (Output(MODEL, "MODEL"),)

    def run(self, model: Any, schedule: str, enabled: bool = True) -> tuple[Any]:
        if not enabled:
            return (model,)
        return (model.with_option("cfg_schedule", GuidanceSchedule.parse(schedule)),)


NODE_CLASS_MAPPINGS = {"KSampler": KSampler, "KSamplerAdvanced": KSamplerAdvanced,
                       "KSamplerDiffusers": KSamplerDiffusers, "GuidanceSchedule": GuidanceScheduleNode}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
