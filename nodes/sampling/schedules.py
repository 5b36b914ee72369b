"""Noise schedules: which sigmas a sampler visits, by ComfyUI's scheduler names.

Every schedule returns a float32 tensor of steps+1 decreasing sigmas ending in 0 (sgm_uniform and
beta can return fewer when timesteps coincide). `calculate_sigmas(model_sampling, name, steps)` is
the one entry point; SCHEDULER_NAMES lists the names in ComfyUI's order.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .model_sampling import ModelSampling

SCHEDULER_NAMES = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta",
                   "linear_quadratic", "kl_optimal"]


def _append_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas.float(), sigmas.new_zeros(1).float()])


def karras(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. 2022, eq. 5: sigma_i = (smax^(1/rho) + i/(n-1) (smin^(1/rho) - smax^(1/rho)))^rho."""
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _append_zero((hi + ramp * (lo - hi)) ** rho)


def exponential(steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Sigmas evenly spaced in log sigma from sigma_max to sigma_min."""
    return _append_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), steps, dtype=torch.float64).exp())


def kl_optimal(steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Sigmas evenly spaced in arctan(sigma) (Sabour et al. 2024, "Align Your Steps", KL-optimal schedule)."""
    w = torch.arange(steps, dtype=torch.float64) / max(steps - 1, 1)
    return _append_zero(torch.tan(w * math.atan(sigma_min) + (1 - w) * math.atan(sigma_max)))


def normal(ms: ModelSampling, steps: int, sgm: bool = False) -> torch.Tensor:
    """Timesteps evenly spaced from t(sigma_max) to t(sigma_min), mapped to sigma by interpolation.

    `sgm` (sgm_uniform) spaces steps+1 points and drops the last, as Stability's sgm code does.
    """
    start, end = float(ms.timestep(ms.sigma_max)), float(ms.timestep(ms.sigma_min))
    if sgm:
        ts = torch.linspace(start, end, steps + 1)[:-1]
    else:
        ts = torch.linspace(start, end, steps)
        if math.isclose(float(ms.sigma(end)), 0.0, abs_tol=1e-5):  # schedules that reach sigma 0 themselves
            return ms.sigma(torch.linspace(start, end, steps + 1)).float()
    return _append_zero(ms.sigma(ts))


def simple(ms: ModelSampling, steps: int) -> torch.Tensor:
    """Every (N/steps)-th training sigma, from the top (diffusers' "trailing" spacing)."""
    stride = ms.num_timesteps / steps
    picks = [ms.num_timesteps - 1 - int(i * stride) for i in range(steps)]
    return _append_zero(ms.sigmas[picks])


def ddim_uniform(ms: ModelSampling, steps: int) -> torch.Tensor:
    """DDIM's uniform timesteps 1, 1+c, 1+2c, ... (c = N // steps), reversed (diffusers' "leading" + offset 1)."""
    stride = max(ms.num_timesteps // steps, 1)
    picks = list(range(1, ms.num_timesteps, stride))[::-1]
    return _append_zero(ms.sigmas[picks])


def beta(ms: ModelSampling, steps: int, alpha: float = 0.6, beta_: float = 0.6) -> torch.Tensor:
    """Timesteps at quantiles of a Beta(alpha, beta) distribution (Lee et al. 2024, "Beta Sampling is All
    You Need"), rounded to training timesteps, repeats removed."""
    import numpy as np
    from scipy import stats

    last = ms.num_timesteps - 1
    ts = np.rint(stats.beta.ppf(1 - np.linspace(0, 1, steps, endpoint=False), alpha, beta_) * last)
    picks: list[int] = []
    for t in ts:
        if not picks or int(t) != picks[-1]:
            picks.append(int(t))
    return _append_zero(ms.sigmas[picks])


def linear_quadratic(ms: ModelSampling, steps: int, threshold: float = 0.025) -> torch.Tensor:
    """Genmo's Mochi schedule: a linear ramp to `threshold` noise for half the steps, then a quadratic
    to 1, as fractions of sigma_max."""
    if steps == 1:
        return torch.tensor([ms.sigma_max, 0.0], dtype=torch.float32)
    lin = steps // 2
    quad = steps - lin
    excess = lin - threshold * steps  # how far a purely linear ramp would overshoot at step `lin`
    a = excess / (lin * quad ** 2)
    b = threshold / lin - 2 * excess / quad ** 2
    c = a * lin ** 2
    levels = [i * threshold / lin for i in range(lin)] + [a * i * i + b * i + c for i in range(lin, steps)] + [1.0]
    return torch.tensor([(1.0 - v) * ms.sigma_max for v in levels], dtype=torch.float32)


_SCHEDULES: dict[str, Callable[[ModelSampling, int], torch.Tensor]] = {
    "normal": normal,
    "karras": lambda ms, n: karras(n, ms.sigma_min, ms.sigma_max),
    "exponential": lambda ms, n: exponential(n, ms.sigma_min, ms.sigma_max),
    "sgm_uniform": lambda ms, n: normal(ms, n, sgm=True),
    "simple": simple,
    "ddim_uniform": ddim_uniform,
    "beta": beta,
    "linear_quadratic": linear_quadratic,
    "kl_optimal": lambda ms, n: kl_optimal(n, ms.sigma_min, ms.sigma_max),
}


def calculate_sigmas(ms: ModelSampling, scheduler: str, steps: int) -> torch.Tensor:
    """Sigmas (float32, ending in 0) of `scheduler` for `steps` steps on the model's schedule."""
    if scheduler not in _SCHEDULES:
        raise ValueError(f"scheduler {scheduler!r} is not one of {SCHEDULER_NAMES}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return _SCHEDULES[scheduler](ms, int(steps)).float()
