"""A toy diffusion problem with a closed-form ideal denoiser, for checking samplers against the maths.

Data x0 ~ N(mu, s^2) per element. The ideal denoiser is D(x; sigma) = mu + s^2 / (s^2 + sigma^2) (x - mu),
and the probability-flow ODE dx/dsigma = (x - D) / sigma has the exact solution
x(sigma_1) - mu = (x(sigma_0) - mu) sqrt((s^2 + sigma_1^2) / (s^2 + sigma_0^2)).
"""
from __future__ import annotations

import math

import torch

MU, S = 0.3, 0.5


class GaussianDenoiser:
    """D(x; sigma) for Gaussian data; counts its calls."""

    def __init__(self, mu: float = MU, s: float = S):
        self.mu, self.s, self.calls = mu, s, 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        sigma = torch.as_tensor(sigma, dtype=x.dtype)
        return self.mu + self.s ** 2 / (self.s ** 2 + sigma ** 2) * (x - self.mu)

    def eps(self, x_ve: torch.Tensor, sigma: float) -> torch.Tensor:
        """The eps prediction (x - D) / sigma an ideal eps-model would output at VE latent x."""
        return (x_ve - self(x_ve, torch.tensor(sigma, dtype=x_ve.dtype))) / sigma

    def exact(self, x: torch.Tensor, sigma_0: float, sigma_1: float) -> torch.Tensor:
        return self.mu + (x - self.mu) * math.sqrt((self.s ** 2 + sigma_1 ** 2) / (self.s ** 2 + sigma_0 ** 2))


def no_hooks(i: int, x: torch.Tensor, denoised: torch.Tensor, sigma: object) -> torch.Tensor:
    return x
