"""The SAMPLER objects and the table of ComfyUI sampler names -> our sampler functions.

A `Sampler` is what flows along a SAMPLER link (KSamplerSelect -> SamplerCustom): a name, the function
and its options. "ddim" is Euler with fresh inpainting noise (as in ComfyUI), the "_gpu" variants are
the same samplers (our Brownian tree always lives on the CPU), "uni_pc_bh2" is UniPC with B(h) = e^h - 1.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import samplers_ode as ode
from . import samplers_sde as sde
from .unipc import sample_unipc


@dataclass(frozen=True)
class Sampler:
    """SAMPLER: `function(model, x, sigmas, hooks, seed=..., **options) -> x`."""

    name: str
    function: Callable[..., torch.Tensor]
    options: dict[str, Any] = field(default_factory=dict)
    inpaint_fresh_noise: bool = False  # ComfyUI's ddim: the kept region is noised with seed+1 noise

    def sample(self, model: Any, x: torch.Tensor, sigmas: torch.Tensor, hooks: Any,
               seed: int | None = None) -> torch.Tensor:
        return self.function(model, x, sigmas, hooks, seed=seed, **self.options)

    def with_options(self, **options: Any) -> Sampler:
        return Sampler(self.name, self.function, {**self.options, **options}, self.inpaint_fresh_noise)


_TABLE: dict[str, tuple[Callable[..., torch.Tensor], dict[str, Any]]] = {
    "euler": (ode.sample_euler, {}),
    "euler_ancestral": (sde.sample_euler_ancestral, {}),
    "heun": (ode.sample_heun, {}),
    "dpm_2": (ode.sample_dpm_2, {}),
    "dpm_2_ancestral": (sde.sample_dpm_2_ancestral, {}),
    "lms": (ode.sample_lms, {}),
    "dpmpp_2s_ancestral": (sde.sample_dpmpp_2s_ancestral, {}),
    "dpmpp_sde": (sde.sample_dpmpp_sde, {}),
    "dpmpp_sde_gpu": (sde.sample_dpmpp_sde, {}),
    "dpmpp_2m": (ode.sample_dpmpp_2m, {}),
    "dpmpp_2m_sde": (sde.sample_dpmpp_2m_sde, {}),
    "dpmpp_2m_sde_gpu": (sde.sample_dpmpp_2m_sde, {}),
    "ddpm": (sde.sample_ddpm, {}),
    "lcm": (sde.sample_lcm, {}),
    "ddim": (ode.sample_euler, {}),
    "uni_pc": (sample_unipc, {"variant": "bh1"}),
    "uni_pc_bh2": (sample_unipc, {"variant": "bh2"}),
}
SAMPLER_NAMES = list(_TABLE)
STOCHASTIC_SAMPLERS = frozenset({"euler_ancestral", "dpm_2_ancestral", "dpmpp_2s_ancestral", "dpmpp_sde",
                                 "dpmpp_sde_gpu", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "ddpm", "lcm"})
# KSampler asks the scheduler for one step more and drops the second-to-last sigma for these (ComfyUI):
# their last step is first order, so the final sigmas are respaced for the same number of model calls.
DISCARD_PENULTIMATE_SIGMA = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})


def sampler_object(name: str) -> Sampler:
    """The SAMPLER for a ComfyUI sampler name; a ValueError lists the valid names."""
    if name not in _TABLE:
        raise ValueError(f"sampler {name!r} is not one of {SAMPLER_NAMES}")
    function, options = _TABLE[name]
    return Sampler(name, function, dict(options), inpaint_fresh_noise=(name == "ddim"))
