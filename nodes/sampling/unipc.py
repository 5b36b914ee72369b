"""UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework"), multistep, data prediction.

Written in sigma space: with lambda = -log(sigma) the first-order step is the DPM-Solver++ / DDIM step
x_t = (sigma_t / sigma_0) x + (1 - sigma_t / sigma_0) D_0, and the higher-order predictor (UniP) and
corrector (UniC) add B(h) * sum_k rho_k D1_k from earlier data predictions (paper's Algorithms 2 and 3;
B(h) = h for "bh1", e^h - 1 for "bh2"). As ComfyUI does, the last sigma 0 is replaced by 0.001, the order
is min(3, steps - 1), rising over the first steps and falling over the last ("lower order final").
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .samplers_ode import Denoise

FINAL_SIGMA = 0.001


def unipc_coefficients(h: float, rks: list[float], variant: str) -> tuple[float, float, torch.Tensor]:
    """(h*phi_1, B(h), b): the phi-function terms of UniPC's order conditions, in float64.

    With hh = -h (data prediction), h*phi_1 = e^hh - 1 and b_k = k! * phi_{k+1}(hh) * hh / B(h), where
    phi_{k+1} is built by the recurrence phi_{k+1}(z) = (phi_k(z) - 1/k!) / z.
    """
    hh = -h
    h_phi_1 = math.expm1(hh)
    b_h = hh if variant == "bh1" else math.expm1(hh)
    b = []
    h_phi_k = h_phi_1 / hh - 1.0
    factorial = 1.0
    for k in range(1, len(rks) + 1):
        b.append(h_phi_k * factorial / b_h)
        factorial *= k + 1
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    return h_phi_1, b_h, torch.tensor(b, dtype=torch.float64)


def _solve(rks: list[float], b: torch.Tensor) -> torch.Tensor:
    """rho solving sum_k rho_k r_k^(i-1) = b_i (the Vandermonde order conditions)."""
    r = torch.tensor(rks, dtype=torch.float64)
    matrix = torch.stack([r ** i for i in range(len(rks))])
    return torch.linalg.solve(matrix, b)


def unipc_update(model: Denoise, x: torch.Tensor, history: list[tuple[float, torch.Tensor]], sigma_t: float,
                 order: int, use_corrector: bool, variant: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One UniPC step from the last history point to `sigma_t`; returns (x_t, D(x_t) or None)."""
    sigma_0, d_0 = history[-1]
    lam_0, lam_t = -math.log(sigma_0), -math.log(sigma_t)
    h = lam_t - lam_0
    rks, d1s = [], []
    for sigma_i, d_i in reversed(history[-order:-1]):
        rk = (-math.log(sigma_i) - lam_0) / h
        rks.append(rk)
        d1s.append((d_i - d_0) / rk)
    rks.append(1.0)
    h_phi_1, b_h, b = unipc_coefficients(h, rks, variant)
    x_base = (sigma_t / sigma_0) * x - h_phi_1 * d_0
    if d1s:
        rhos_p = torch.tensor([0.5], dtype=torch.float64) if order == 2 else _solve(rks[:-1], b[:-1])
        x_t = x_base - b_h * sum(float(rho) * d for rho, d in zip(rhos_p, d1s, strict=True))
    else:
        x_t = x_base
    if not use_corrector:
        return x_t, None
    rhos_c = torch.tensor([0.5], dtype=torch.float64) if order == 1 else _solve(rks, b)
    d_t = model(x_t, torch.tensor(sigma_t, dtype=torch.float32, device=x.device))
    correction = sum(float(rho) * d for rho, d in zip(rhos_c[:-1], d1s, strict=True)) + float(rhos_c[-1]) * (d_t - d_0)
    return x_base - b_h * correction, d_t


def sample_unipc(model: Denoise, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any, variant: str = "bh1",
                 **_: Any) -> torch.Tensor:
    """Multistep UniPC-p with the corrector on every step but the last (which then needs no model call)."""
    levels = [float(s) for s in sigmas]
    if levels[-1] < FINAL_SIGMA:
        levels[-1] = FINAL_SIGMA
    steps = len(levels) - 1
    order = min(3, max(steps - 1, 1))
    denoised = model(x, sigmas[0])
    history = [(levels[0], denoised)]
    for k in range(steps):
        step_order = min(k + 1, order, steps - k)
        last = k == steps - 1
        x, d_t = unipc_update(model, x, history, levels[k + 1], step_order, not last, variant)
        x = hooks(k, x, history[-1][1], sigmas[k])
        if d_t is not None:
            history = (history + [(levels[k + 1], d_t)])[-order:]
    return x
