"""Noise: the starting noise of a latent batch and the per-step noise of stochastic samplers.

`prepare_noise` is ComfyUI's: one CPU generator seeded with the seed draws the whole batch (so a
seed gives the same image on every device); `batch_index` picks per-image noise for batches cut from
a larger one. Ancestral samplers draw fresh Gaussian noise per step; the SDE samplers draw increments
of a Brownian tree (torchsde), so their noise depends on the sigma interval, not on the step count.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def prepare_noise(latent: torch.Tensor, seed: int, batch_index: Sequence[int] | None = None) -> torch.Tensor:
    """Standard normal noise shaped like `latent`, drawn on the CPU from `seed` (ComfyUI's prepare_noise).

    With `batch_index` (a LATENT's "batch_index"), image i gets the noise that index batch_index[i]
    would get in one long draw, so a sub-batch reproduces its images from the full batch.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    shape = tuple(latent.shape)
    if batch_index is None:
        return torch.randn(shape, generator=gen, dtype=torch.float32)
    wanted = sorted(set(int(i) for i in batch_index))
    drawn: dict[int, torch.Tensor] = {}
    for i in range(wanted[-1] + 1):
        noise = torch.randn((1,) + shape[1:], generator=gen, dtype=torch.float32)
        if i in wanted:
            drawn[i] = noise
    return torch.cat([drawn[int(i)] for i in batch_index], dim=0)


def gaussian_noise_sampler(x: torch.Tensor, seed: int | None) -> NoiseSampler:
    """Fresh N(0, I) noise per call from a generator seeded with `seed` (ancestral samplers)."""
    gen = torch.Generator(device=x.device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))

    def sample(sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)

    return sample


class BrownianTreeNoiseSampler:
    """Normalised Brownian increments (W(s1) - W(s0)) / sqrt(|s1 - s0|) over sigma (Kidger et al. 2021's
    Brownian interval, via torchsde). The same seed gives the same path whatever the step sizes, so SDE
    samplers converge as the step count grows instead of seeing new noise each time."""

    def __init__(self, x: torch.Tensor, sigma_min: float, sigma_max: float, seed: int | None = None):
        import torchsde

        if seed is None:
            seed = int(torch.randint(0, 2 ** 63 - 1, []).item())
        self.device, self.dtype = x.device, x.dtype
        w0 = torch.zeros(x.shape, dtype=torch.float32)  # the tree lives on the CPU: reproducible everywhere
        # Slightly wider than the schedule, so float32/float64 roundings of its ends stay inside the tree.
        t0, t1 = float(sigma_min) * (1 - 1e-5), float(sigma_max) * (1 + 1e-5) + 1e-6
        self.tree = torchsde.BrownianTree(t0, w0, t1, entropy=int(seed) % (2 ** 63))

    def __call__(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        s0, s1 = float(sigma), float(sigma_next)
        lo, hi = min(s0, s1), max(s0, s1)
        w = self.tree(lo, hi) / (hi - lo) ** 0.5
        return w.to(self.device, self.dtype)
