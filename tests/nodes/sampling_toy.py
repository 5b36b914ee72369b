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


class CountingUNet(torch.nn.Module):
    """Wraps a UNet and records the batch size of every call (for cancel and batching tests)."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner
        self.batches: list[int] = []

    def forward(self, sample, timestep, **kwargs):
        self.batches.append(int(sample.shape[0]))
        return self.inner(sample, timestep, **kwargs)


def tiny_model(seed: int = 0, counting: bool = False):
    """A MODEL around a tiny random SD1-architecture UNet (cross-attention width 32), fp32 on the CPU."""
    from nodes.model_types import DiffusionModel
    from nodes.sampling.model_sampling import SD1_SCHEDULER_CONFIG
    from nodes.sd.tiny import tiny_modules

    unet = tiny_modules(seed, dtype=torch.float32)[0]
    return DiffusionModel(unet=CountingUNet(unet) if counting else unet, scheduler_config=dict(SD1_SCHEDULER_CONFIG))


def conditioning(seed: int, batch: int = 1, tokens: int = 77, width: int = 32, **opts):
    """A CONDITIONING of random text embeddings in ComfyUI's shape."""
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(batch, tokens, width, generator=gen), {"pooled_output": torch.randn(batch, width, generator=gen),
                                                                 **opts}]]
