"""Deterministic samplers: solvers of the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma.

Each takes `model(x, sigma) -> denoised`, a start latent `x` at sigmas[0], the decreasing `sigmas`, and
`hooks(i, x, denoised, sigma) -> x` called after each step (callbacks, progress, cancel). Variables are
in sigma ("variance exploding") space; lambda = -log(sigma) is the half log-SNR of DPM-Solver.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def to_d(x: torch.Tensor, sigma: torch.Tensor, denoised: torch.Tensor) -> torch.Tensor:
    """The ODE's slope dx/dsigma = (x - D) / sigma (Karras et al. 2022, eq. 4 with sigma(t) = t)."""
    return (x - denoised) / sigma


def sample_euler(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any, **_: Any) -> torch.Tensor:
    """Euler's method on the ODE (Karras et al. 2022, Algorithm 2 without the second-order correction).
    At a step to sigma = 0 it lands exactly on the denoised prediction."""
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        x = x + to_d(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
        x = hooks(i, x, denoised, sigmas[i])
    return x


def sample_heun(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any, **_: Any) -> torch.Tensor:
    """Heun's second-order method (Karras et al. 2022, Algorithm 1): average the slopes at both ends;
    plain Euler for the last step to sigma = 0, where the slope is undefined."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        d = to_d(x, sigma, denoised)
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = x + d * dt
        else:
            x_2 = x + d * dt
            d_2 = to_d(x_2, sigma_next, model(x_2, sigma_next))
            x = x + (d + d_2) / 2 * dt
        x = hooks(i, x, denoised, sigma)
    return x


def sample_dpm_2(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any, **_: Any) -> torch.Tensor:
    """DPM-Solver-2 (Lu et al. 2022, Algorithm 1 with r = 1/2) as k-diffusion writes it: an Euler half step
    to the log-midpoint sigma_mid = sqrt(sigma * sigma_next), then the full step with the midpoint slope."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        d = to_d(x, sigma, denoised)
        if sigma_next == 0:
            x = x + d * (sigma_next - sigma)
        else:
            sigma_mid = (sigma.log() + sigma_next.log()).div(2).exp()
            x_2 = x + d * (sigma_mid - sigma)
            d_2 = to_d(x_2, sigma_mid, model(x_2, sigma_mid))
            x = x + d_2 * (sigma_next - sigma)
        x = hooks(i, x, denoised, sigma)
    return x


def lms_coefficients(sigmas: np.ndarray, i: int, order: int) -> list[float]:
    """Adams-Bashforth weights for step i: the integral over [sigma_i, sigma_{i+1}] of each Lagrange basis
    polynomial through the last `order` nodes sigma_i, sigma_{i-1}, ... (exact polynomial integration)."""
    from numpy.polynomial import Polynomial

    nodes = [float(sigmas[i - k]) for k in range(order)]
    weights = []
    for j in range(order):
        others = [nodes[k] for k in range(order) if k != j]
        basis = Polynomial.fromroots(others) / np.prod([nodes[j] - o for o in others]) if others else Polynomial([1.0])
        integral = basis.integ()
        weights.append(float(integral(float(sigmas[i + 1])) - integral(float(sigmas[i]))))
    return weights


def sample_lms(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any, order: int = 4,
               **_: Any) -> torch.Tensor:
    """Linear multistep (Adams-Bashforth) on the ODE, as in Karras's k-diffusion and diffusers' LMS:
    x_{i+1} = x_i + sum_j c_ij d_{i-j}, order rising to `order` as slopes accumulate."""
    nodes = sigmas.detach().double().cpu().numpy()
    slopes: list[torch.Tensor] = []
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i])
        slopes = (slopes + [to_d(x, sigmas[i], denoised)])[-order:]
        weights = lms_coefficients(nodes, i, len(slopes))
        x = x + sum(w * d for w, d in zip(weights, reversed(slopes), strict=True))
        x = hooks(i, x, denoised, sigmas[i])
    return x


def sample_dpmpp_2m(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any, **_: Any) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2): exact integration of the linear part in lambda,
    data prediction extrapolated linearly from the previous step; first order on the first and last step."""
    old_denoised = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = sigma.log() - sigma_next.log()  # lambda_next - lambda
            d = denoised
            if old_denoised is not None:
                r = (sigmas[i - 1].log() - sigma.log()) / h  # h_last / h
                d = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * old_denoised
            x = (sigma_next / sigma) * x - torch.expm1(-h) * d
        old_denoised = denoised
        x = hooks(i, x, denoised, sigma)
    return x
