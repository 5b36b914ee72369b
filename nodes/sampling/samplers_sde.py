"""Stochastic samplers: ancestral steps and SDE solvers that inject fresh noise as they go.

Same calling convention as samplers_ode (model(x, sigma) -> denoised, hooks after each step) plus a
`seed`: ancestral samplers draw per-step Gaussian noise from a generator seeded with it, the SDE
samplers increments of a Brownian tree seeded with it, so every sampler is reproducible from the seed.
"""
from __future__ import annotations

from typing import Any

import torch

from .noise import BrownianTreeNoiseSampler, NoiseSampler, gaussian_noise_sampler
from .samplers_ode import Denoise, to_d


def ancestral_step(sigma: torch.Tensor, sigma_next: torch.Tensor, eta: float = 1.0) -> tuple[Any, Any]:
    """Split a step sigma -> sigma_next into a deterministic move to sigma_down and fresh noise of std
    sigma_up, with sigma_down^2 + sigma_up^2 = sigma_next^2; eta = 1 is DDPM's posterior variance
    (Ho et al. 2020, eq. 7, in sigma space), eta = 0 the deterministic ODE step."""
    if not eta or sigma_next == 0:
        return sigma_next, sigma_next * 0
    up = torch.minimum(sigma_next, eta * (sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2) ** 0.5)
    return (sigma_next ** 2 - up ** 2) ** 0.5, up


def _brownian(x: torch.Tensor, sigmas: torch.Tensor, seed: int | None) -> NoiseSampler:
    positive = sigmas[sigmas > 0]
    return BrownianTreeNoiseSampler(x, float(positive.min()), float(sigmas.max()), seed=seed)


def sample_euler_ancestral(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
                           seed: int | None = None, eta: float = 1.0, **_: Any) -> torch.Tensor:
    """Ancestral Euler: an Euler step to sigma_down, then noise of std sigma_up (k-diffusion's
    sample_euler_ancestral; diffusers' EulerAncestralDiscreteScheduler)."""
    noise = gaussian_noise_sampler(x, seed)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        down, up = ancestral_step(sigma, sigma_next, eta)
        x = x + to_d(x, sigma, denoised) * (down - sigma)
        if sigma_next > 0:
            x = x + noise(sigma, sigma_next) * up
        x = hooks(i, x, denoised, sigma)
    return x


def sample_dpm_2_ancestral(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
                           seed: int | None = None, eta: float = 1.0, **_: Any) -> torch.Tensor:
    """DPM-Solver-2's midpoint step (Lu et al. 2022) to sigma_down, then ancestral noise of std sigma_up."""
    noise = gaussian_noise_sampler(x, seed)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        down, up = ancestral_step(sigma, sigma_next, eta)
        d = to_d(x, sigma, denoised)
        if down == 0:
            x = x + d * (down - sigma)
        else:
            sigma_mid = (sigma.log() + torch.as_tensor(down).log()).div(2).exp()
            x_2 = x + d * (sigma_mid - sigma)
            x = x + to_d(x_2, sigma_mid, model(x_2, sigma_mid)) * (down - sigma)
            x = x + noise(sigma, sigma_next) * up
        x = hooks(i, x, denoised, sigma)
    return x


def sample_dpmpp_2s_ancestral(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
                              seed: int | None = None, eta: float = 1.0, **_: Any) -> torch.Tensor:
    """DPM-Solver++(2S) (Lu et al. 2022b, Algorithm 1, r = 1/2) to sigma_down, then ancestral noise."""
    noise = gaussian_noise_sampler(x, seed)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        down, up = ancestral_step(sigma, sigma_next, eta)
        if down == 0:
            x = denoised
        else:
            h = sigma.log() - torch.as_tensor(down).log()
            sigma_s = (sigma.log() - h / 2).exp()  # lambda_s = lambda + h/2
            x_2 = (sigma_s / sigma) * x - torch.expm1(-h / 2) * denoised
            x = (down / sigma) * x - torch.expm1(-h) * model(x_2, sigma_s)
        if sigma_next > 0:
            x = x + noise(sigma, sigma_next) * up
        x = hooks(i, x, denoised, sigma)
    return x


def sample_dpmpp_sde(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
                     seed: int | None = None, eta: float = 1.0, r: float = 0.5, **_: Any) -> torch.Tensor:
    """DPM-Solver++ SDE (k-diffusion's sample_dpmpp_sde): a stochastic singlestep second-order solver.
    Each half of the step is a DPM-Solver++ first-order update with ancestral noise, the second using the
    weighted data prediction (1 - 1/2r) D(x) + 1/2r D(x_s) (Lu et al. 2022b, eq. 9 with r = 1/2)."""
    noise = _brownian(x, sigmas, seed)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = sigma.log() - sigma_next.log()
            sigma_s = (sigma.log() - h * r).exp()
            down, up = ancestral_step(sigma, sigma_s, eta)
            x_2 = (down / sigma) * x - torch.expm1(torch.as_tensor(down).log() - sigma.log()) * denoised
            x_2 = x_2 + noise(sigma, sigma_s) * up
            denoised_2 = model(x_2, sigma_s)
            fac = 1 / (2 * r)
            down, up = ancestral_step(sigma, sigma_next, eta)
            mixed = (1 - fac) * denoised + fac * denoised_2
            x = (down / sigma) * x - torch.expm1(torch.as_tensor(down).log() - sigma.log()) * mixed
            x = x + noise(sigma, sigma_next) * up
        x = hooks(i, x, denoised, sigma)
    return x


def sample_dpmpp_2m_sde(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
                        seed: int | None = None, eta: float = 1.0, solver_type: str = "midpoint",
                        **_: Any) -> torch.Tensor:
    """DPM-Solver++(2M) SDE (Lu et al. 2022b, Appendix; diffusers' "sde-dpmsolver++"): the exact linear
    part of the SDE in lambda plus a multistep correction and Brownian noise std sigma' sqrt(1 - e^{-2 eta h})."""
    noise = _brownian(x, sigmas, seed)
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        h = None
        if sigma_next == 0:
            x = denoised
        else:
            h = sigma.log() - sigma_next.log()
            eta_h = eta * h
            x = sigma_next / sigma * (-eta_h).exp() * x - torch.expm1(-h - eta_h) * denoised
            if old_denoised is not None:
                r = h_last / h
                phi = -torch.expm1(-h - eta_h)
                if solver_type == "heun":
                    x = x + (phi / (-h - eta_h) + 1) * (1 / r) * (denoised - old_denoised)
                else:
                    x = x + 0.5 * phi * (1 / r) * (denoised - old_denoised)
            if eta:
                x = x + noise(sigma, sigma_next) * sigma_next * (-torch.expm1(-2 * eta_h)) ** 0.5
        old_denoised, h_last = denoised, h
        x = hooks(i, x, denoised, sigma)
    return x


def sample_ddpm(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
                seed: int | None = None, **_: Any) -> torch.Tensor:
    """DDPM ancestral sampling (Ho et al. 2020, Algorithm 2 / eq. 11) between the given noise levels:
    the posterior mean from the eps prediction, plus posterior noise, in VP units."""
    noise = gaussian_noise_sampler(x, seed)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        abar, abar_next = 1 / (sigma ** 2 + 1), 1 / (sigma_next ** 2 + 1)
        alpha = abar / abar_next
        eps = to_d(x, sigma, denoised)
        x_vp = x * abar ** 0.5
        mean = (x_vp - (1 - alpha) * eps / (1 - abar) ** 0.5) / alpha ** 0.5
        if sigma_next > 0:
            mean = mean + ((1 - alpha) * (1 - abar_next) / (1 - abar)) ** 0.5 * noise(sigma, sigma_next)
            x = mean / abar_next ** 0.5
        else:
            x = mean
        x = hooks(i, x, denoised, sigma)
    return x


def sample_lcm(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
               seed: int | None = None, **_: Any) -> torch.Tensor:
    """Latent Consistency Model multistep sampling (Luo et al. 2023, Algorithm 1): jump to the x0
    prediction, then re-noise it to the next level with fresh noise."""
    noise = gaussian_noise_sampler(x, seed)
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        x = denoised + noise(sigma, sigma_next) * sigma_next if sigma_next > 0 else denoised
        x = hooks(i, x, denoised, sigma)
    return x
