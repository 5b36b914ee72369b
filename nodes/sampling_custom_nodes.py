"""ComfyUI's custom-sampling nodes: SAMPLER, SIGMAS, NOISE and GUIDER as separate links.

KSamplerSelect/BasicScheduler/KarrasScheduler/ExponentialScheduler/SplitSigmas make the pieces,
SamplerCustom (model, add_noise, noise_seed, cfg, conditioning, sampler, sigmas, latent) and
SamplerCustomAdvanced (noise, guider, sampler, sigmas, latent) run them; both also return the last
denoised (x0) prediction as "denoised_output". Same names, inputs and defaults as ComfyUI.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from engine import (
    BOOLEAN,
    COMBO,
    CONDITIONING,
    FLOAT,
    GUIDER,
    INT,
    LATENT,
    MODEL,
    NOISE,
    SAMPLER,
    SIGMAS,
    Input,
    Output,
    RunContext,
    node,
)

from .sampling import (
    SAMPLER_NAMES,
    SCHEDULER_NAMES,
    Sampler,
    SampleResult,
    calculate_sigmas,
    model_sampling,
    prepare_noise,
    sample,
    sampler_object,
)
from .sampling.schedules import exponential, karras
from .sampling_nodes import MAX_SEED, Latent, _cfg_input

CUSTOM = "sampling/custom_sampling"


@dataclass(frozen=True)
class RandomNoiseSource:
    """NOISE: ComfyUI's prepare_noise from `seed` (batch_index aware)."""

    seed: int

    def generate_noise(self, latent: Latent) -> torch.Tensor:
        return prepare_noise(latent["samples"], self.seed, latent.get("batch_index"))


@dataclass(frozen=True)
class NoNoise:
    """NOISE: zeros (continue from a latent that already carries its noise)."""

    seed: int = 0

    def generate_noise(self, latent: Latent) -> torch.Tensor:
        return torch.zeros(latent["samples"].shape, dtype=torch.float32)


@dataclass(frozen=True)
class Guider:
    """GUIDER: a model with its conditioning and cfg (BasicGuider: positive only, cfg 1)."""

    model: Any
    positive: Any
    negative: Any
    cfg: float

    def sample(self, noise: torch.Tensor, latent: Latent, sampler: Sampler, sigmas: torch.Tensor, seed: int,
               ctx: RunContext | None) -> SampleResult:
        return sample(self.model, noise, self.positive, self.negative, self.cfg, sampler, sigmas,
                      latent["samples"], noise_mask=latent.get("noise_mask"), seed=seed, ctx=ctx)


def _outputs(latent: Latent, result: SampleResult) -> tuple[Latent, Latent]:
    return ({**latent, "samples": result.samples}, {**latent, "samples": result.denoised})


@node("KSamplerSelect", category=f"{CUSTOM}/samplers", display_name="KSamplerSelect")
class KSamplerSelect:
    """A SAMPLER by ComfyUI sampler name."""

    inputs = (Input("sampler_name", COMBO, options=SAMPLER_NAMES),)
    outputs = (Output(SAMPLER, "SAMPLER"),)

    def run(self, sampler_name: str) -> tuple[Sampler]:
        return (sampler_object(sampler_name),)


@node("BasicScheduler", category=f"{CUSTOM}/schedulers", display_name="BasicScheduler")
class BasicScheduler:
    """The SIGMAS of a named schedule for the model; denoise < 1 keeps the tail of a longer schedule."""

    inputs = (Input("model", MODEL), Input("scheduler", COMBO, options=SCHEDULER_NAMES),
              Input("steps", INT, default=20, min=1, max=10000),
              Input("denoise", FLOAT, default=1.0, min=0.0, max=1.0, step=0.01))
    outputs = (Output(SIGMAS, "SIGMAS"),)

    def run(self, model: Any, scheduler: str, steps: int, denoise: float) -> tuple[torch.Tensor]:
        total = steps
        if denoise < 1.0:
            if denoise <= 0.0:
                return (torch.zeros(0),)
            total = int(steps / denoise)
        return (calculate_sigmas(model_sampling(model), scheduler, total)[-(steps + 1):],)


@node("KarrasScheduler", category=f"{CUSTOM}/schedulers", display_name="KarrasScheduler")
class KarrasScheduler:
    """Karras et al. 2022's sigmas between sigma_max and sigma_min with exponent rho."""

    inputs = (Input("steps", INT, default=20, min=1, max=10000),
              Input("sigma_max", FLOAT, default=14.614642, min=0.0, max=5000.0, step=0.01, extra={"round": False}),
              Input("sigma_min", FLOAT, default=0.0291675, min=0.0, max=5000.0, step=0.01, extra={"round": False}),
              Input("rho", FLOAT, default=7.0, min=0.0, max=100.0, step=0.01, extra={"round": False}))
    outputs = (Output(SIGMAS, "SIGMAS"),)

    def run(self, steps: int, sigma_max: float, sigma_min: float, rho: float) -> tuple[torch.Tensor]:
        return (karras(steps, sigma_min, sigma_max, rho).float(),)


@node("ExponentialScheduler", category=f"{CUSTOM}/schedulers", display_name="ExponentialScheduler")
class ExponentialScheduler:
    """Sigmas evenly spaced in log sigma."""

    inputs = (Input("steps", INT, default=20, min=1, max=10000),
              Input("sigma_max", FLOAT, default=14.614642, min=0.0, max=5000.0, step=0.01, extra={"round": False}),
              Input("sigma_min", FLOAT, default=0.0291675, min=0.0, max=5000.0, step=0.01, extra={"round": False}))
    outputs = (Output(SIGMAS, "SIGMAS"),)

    def run(self, steps: int, sigma_max: float, sigma_min: float) -> tuple[torch.Tensor]:
        return (exponential(steps, sigma_min, sigma_max).float(),)


@node("SplitSigmas", category=f"{CUSTOM}/sigmas", display_name="SplitSigmas")
class SplitSigmas:
    """Sigmas up to `step` (high) and from `step` on (low); they share sigma[step]."""

    inputs = (Input("sigmas", SIGMAS), Input("step", INT, default=0, min=0, max=10000))
    outputs = (Output(SIGMAS, "high_sigmas"), Output(SIGMAS, "low_sigmas"))

    def run(self, sigmas: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (sigmas[:step + 1], sigmas[step:])


@node("SamplerCustom", category=CUSTOM, display_name="SamplerCustom")
class SamplerCustom:
    """Samples with an explicit SAMPLER and SIGMAS; returns the result and its last x0 prediction."""

    inputs = (Input("model", MODEL), Input("add_noise", BOOLEAN, default=True),
              Input("noise_seed", INT, default=0, min=0, max=MAX_SEED, control_after_generate=True),
              _cfg_input(), Input("positive", CONDITIONING), Input("negative", CONDITIONING),
              Input("sampler", SAMPLER), Input("sigmas", SIGMAS), Input("latent_image", LATENT))
    outputs = (Output(LATENT, "output"), Output(LATENT, "denoised_output"))

    def run(self, model: Any, add_noise: bool, noise_seed: int, cfg: float, positive: Any, negative: Any,
            sampler: Sampler, sigmas: torch.Tensor, latent_image: Latent,
            ctx: RunContext | None = None) -> tuple[Latent, Latent]:
        noise = (RandomNoiseSource(noise_seed) if add_noise else NoNoise()).generate_noise(latent_image)
        guider = Guider(model, positive, negative, cfg)
        return _outputs(latent_image, guider.sample(noise, latent_image, sampler, sigmas, noise_seed, ctx))


@node("RandomNoise", category=f"{CUSTOM}/noise", display_name="RandomNoise")
class RandomNoise:
    inputs = (Input("noise_seed", INT, default=0, min=0, max=MAX_SEED, control_after_generate=True),)
    outputs = (Output(NOISE, "NOISE"),)

    def run(self, noise_seed: int) -> tuple[RandomNoiseSource]:
        return (RandomNoiseSource(noise_seed),)


@node("DisableNoise", category=f"{CUSTOM}/noise", display_name="DisableNoise")
class DisableNoise:
    inputs = ()
    outputs = (Output(NOISE, "NOISE"),)

    def run(self) -> tuple[NoNoise]:
        return (NoNoise(),)


@node("CFGGuider", category=f"{CUSTOM}/guiders", display_name="CFGGuider")
class CFGGuider:
    inputs = (Input("model", MODEL), Input("positive", CONDITIONING), Input("negative", CONDITIONING),
              Input("cfg", FLOAT, default=8.0, min=0.0, max=100.0, step=0.1, extra={"round": 0.01}))
    outputs = (Output(GUIDER, "GUIDER"),)

    def run(self, model: Any, positive: Any, negative: Any, cfg: float) -> tuple[Guider]:
        return (Guider(model, positive, negative, cfg),)


@node("BasicGuider", category=f"{CUSTOM}/guiders", display_name="BasicGuider")
class BasicGuider:
    inputs = (Input("model", MODEL), Input("conditioning", CONDITIONING))
    outputs = (Output(GUIDER, "GUIDER"),)

    def run(self, model: Any, conditioning: Any) -> tuple[Guider]:
        return (Guider(model, conditioning, [], 1.0),)


@node("SamplerCustomAdvanced", category=CUSTOM, display_name="SamplerCustomAdvanced")
class SamplerCustomAdvanced:
    inputs = (Input("noise", NOISE), Input("guider", GUIDER), Input("sampler", SAMPLER), Input("sigmas", SIGMAS),
              Input("latent_image", LATENT))
    outputs = (Output(LATENT, "output"), Output(LATENT, "denoised_output"))

    def run(self, noise: Any, guider: Guider, sampler: Sampler, sigmas: torch.Tensor, latent_image: Latent,
            ctx: RunContext | None = None) -> tuple[Latent, Latent]:
        result = guider.sample(noise.generate_noise(latent_image), latent_image, sampler, sigmas,
                               int(getattr(noise, "seed", 0)), ctx)
        return _outputs(latent_image, result)


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (
    KSamplerSelect, BasicScheduler, KarrasScheduler, ExponentialScheduler, SplitSigmas, SamplerCustom, RandomNoise,
    DisableNoise, CFGGuider, BasicGuider, SamplerCustomAdvanced)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
