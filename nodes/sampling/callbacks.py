"""Per-step callbacks, guidance schedules and progress: what happens between two sampler steps.

A step callback is any callable `fn(info: StepInfo) -> None | dict`, called after every step (the idea
of diffusers' `callback_on_step_end`). It may return {"latents": tensor} to replace the latents the next
step starts from, and/or {"cfg": float} to change the guidance scale from the next step on. Attach one
to a MODEL without mutating it: `model.add_step_callback(fn)` returns a patched clone (see
nodes/sampling_nodes.py). Multistep samplers keep their history when latents are replaced.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .preview import latent_preview


@dataclass(frozen=True)
class StepInfo:
    """What a step callback sees after step `step` (0-based) of `total`.

    `sigma` is the step's starting noise level and `timestep` the training timestep the UNet was fed
    there; `latents` is the sampler's state after the step (for diffusers schedulers: its own sample,
    as diffusers' callbacks see it); `denoised` the step's x0 prediction; `cfg` the guidance used;
    `fraction` how far through the whole schedule the step started (0..1, counting KSamplerAdvanced's
    skipped steps).
    """

    step: int
    total: int
    sigma: float
    timestep: float
    latents: torch.Tensor
    denoised: torch.Tensor
    cfg: float
    fraction: float


@dataclass(frozen=True)
class GuidanceSchedule:
    """A piecewise-constant guidance scale over the fraction of steps done.

    `points` are (start_fraction, cfg) pairs; the scale of a step is the cfg of the last point whose
    start is <= the step's fraction (steps before the first point keep the sampler's own cfg).
    The seed's example is `GuidanceSchedule(((0.0, 10.0), (0.3, 7.5), (0.6, 5.0)))`.
    """

    points: tuple[tuple[float, float], ...]

    @classmethod
    def parse(cls, text: str) -> GuidanceSchedule:
        """Parse "0.0:10.0, 0.3:7.5, 0.6:5.0" (fraction:cfg pairs; commas, semicolons or newlines)."""
        points = []
        for item in text.replace(";", ",").replace("\n", ",").split(","):
            if not item.strip():
                continue
            try:
                start, cfg = (float(v) for v in item.split(":"))
            except ValueError:
                raise ValueError(f"guidance schedule: {item.strip()!r} is not 'fraction:cfg' (e.g. 0.3:7.5)") from None
            if not 0.0 <= start <= 1.0:
                raise ValueError(f"guidance schedule: fraction {start} is outside 0..1")
            points.append((start, cfg))
        if not points:
            raise ValueError("guidance schedule is empty; write e.g. '0.0:10.0, 0.3:7.5, 0.6:5.0'")
        return cls(tuple(sorted(points)))

    def cfg_at(self, fraction: float, default: float) -> float:
        cfg = default
        for start, value in self.points:
            if fraction + 1e-9 >= start:
                cfg = value
        return cfg


@dataclass
class SamplingState:
    """Mutable state shared by the denoiser and the step hooks during one sampling run."""

    base_cfg: float
    total: int
    step_offset: int = 0
    schedule_steps: int | None = None
    schedule: GuidanceSchedule | None = None
    cfg_override: float | None = None
    step: int = 0
    last_timestep: float = 0.0

    @property
    def fraction(self) -> float:
        steps = self.schedule_steps or self.total
        return (self.step_offset + self.step) / max(steps, 1)

    @property
    def cfg(self) -> float:
        if self.cfg_override is not None:
            return self.cfg_override
        if self.schedule is not None:
            return self.schedule.cfg_at(self.fraction, self.base_cfg)
        return self.base_cfg


@dataclass
class StepHooks:
    """Runs after each sampler step: callbacks (which may replace latents or guidance), progress
    (a cancel point) and an optional latent preview. Samplers call `hooks(i, x, denoised, sigma)`."""

    state: SamplingState
    callbacks: Sequence[Callable[[StepInfo], Any]] = ()
    ctx: Any = None
    previews: bool = False
    last_denoised: torch.Tensor | None = field(default=None, repr=False)

    def __call__(self, i: int, x: torch.Tensor, denoised: torch.Tensor, sigma: Any) -> torch.Tensor:
        self.last_denoised = denoised
        info = StepInfo(step=i, total=self.state.total, sigma=float(sigma), timestep=self.state.last_timestep,
                        latents=x, denoised=denoised, cfg=self.state.cfg, fraction=self.state.fraction)
        for callback in self.callbacks:
            x = self._apply(callback(info), x)
            info = replace(info, latents=x)
        self.state.step = i + 1
        if self.ctx is not None:
            self.ctx.progress(i + 1, self.state.total, latent_preview(denoised) if self.previews else None)
        return x

    def _apply(self, result: Any, x: torch.Tensor) -> torch.Tensor:
        if result is None:
            return x
        if not isinstance(result, dict):
            raise TypeError(f"a step callback must return None or a dict, got {type(result).__name__}")
        unknown = set(result) - {"latents", "cfg", "guidance_scale"}
        if unknown:
            raise ValueError(f"a step callback returned unknown keys {sorted(unknown)} (latents, cfg)")
        cfg = result.get("cfg", result.get("guidance_scale"))
        if cfg is not None:
            self.state.cfg_override = float(cfg)
        latents = result.get("latents")
        if latents is not None:
            if latents.shape != x.shape:
                raise ValueError(f"a step callback returned latents of shape {tuple(latents.shape)}, "
                                 f"expected {tuple(x.shape)}")
            x = latents.to(x.device, x.dtype)
        return x
