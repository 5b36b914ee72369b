"""Sampling for diffusion models: ComfyUI's samplers and schedules in sigma space, diffusers' schedulers
by name, classifier-free guidance over CONDITIONING, per-step callbacks, progress and previews.

`SAMPLER_NAMES` / `SCHEDULER_NAMES` are the exact lists KSampler accepts (the compat layer serves them
as comfy.samplers.KSampler.SAMPLERS/SCHEDULERS); `DIFFUSERS_SCHEDULER_NAMES` the diffusers classes.
"""
from __future__ import annotations

from .callbacks import GuidanceSchedule, SamplingState, StepHooks, StepInfo
from .diffusers_adapter import DIFFUSERS_SCHEDULER_NAMES, DiffusersSchedulerSpec, sample_diffusers
from .loop import SampleResult, ksampler_sigmas, model_sampling, sample
from .model_sampling import SD1_SCHEDULER_CONFIG, ModelSampling
from .noise import prepare_noise
from .samplers import DISCARD_PENULTIMATE_SIGMA, SAMPLER_NAMES, STOCHASTIC_SAMPLERS, Sampler, sampler_object
from .schedules import SCHEDULER_NAMES, calculate_sigmas

# ComfyUI splits its list: k-diffusion samplers first, then these three added by KSampler itself.
KSAMPLER_NAMES = [n for n in SAMPLER_NAMES if n not in ("ddim", "uni_pc", "uni_pc_bh2")]

__all__ = [
    "DIFFUSERS_SCHEDULER_NAMES", "DISCARD_PENULTIMATE_SIGMA", "DiffusersSchedulerSpec", "GuidanceSchedule",
    "KSAMPLER_NAMES", "ModelSampling", "SAMPLER_NAMES", "SCHEDULER_NAMES", "SD1_SCHEDULER_CONFIG",
    "STOCHASTIC_SAMPLERS", "SampleResult", "Sampler", "SamplingState", "StepHooks", "StepInfo",
    "calculate_sigmas", "ksampler_sigmas", "model_sampling", "prepare_noise", "sample", "sample_diffusers",
    "sampler_object",
]
