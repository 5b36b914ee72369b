"""Each ComfyUI sampler against the maths on a toy problem with a closed-form ideal denoiser (Gaussian data).

Three independent references: the exact solution of the probability-flow ODE (deterministic samplers,
and the stochastic ones at eta = 0, converging at their order as steps grow); diffusers' schedulers
driven by the same ideal eps-model (same update rule written by others); and the data distribution
N(mu, s^2) that stochastic samplers must approach.
"""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from nodes.sampling.model_sampling import SD1_SCHEDULER_CONFIG
from nodes.sampling.samplers import SAMPLER_NAMES, STOCHASTIC_SAMPLERS, sampler_object
from nodes.sampling.schedules import karras
from tests.nodes.sampling_toy import MU, GaussianDenoiser, S, no_hooks

# (sampler, eta or None, minimum observed order): the asymptotic order of the global error at sigma_min.
ODE_ORDERS = [("euler", None, 0.9), ("ddim", None, 0.9), ("heun", None, 1.9), ("dpm_2", None, 1.9),
              ("lms", None, 1.9), ("dpmpp_2m", None, 1.9), ("uni_pc", None, 1.8), ("uni_pc_bh2", None, 1.8),
              ("euler_ancestral", 0.0, 0.9), ("dpm_2_ancestral", 0.0, 1.9), ("dpmpp_2s_ancestral", 0.0, 1.9),
              ("dpmpp_sde", 0.0, 1.9), ("dpmpp_2m_sde", 0.0, 1.9)]


def test_every_sampler_name_is_covered_by_a_test_here():
    covered = {name for name, _, _ in ODE_ORDERS} | STOCHASTIC_SAMPLERS
    assert set(SAMPLER_NAMES) <= covered | {"dpmpp_sde_gpu", "dpmpp_2m_sde_gpu"}


@pytest.mark.parametrize("name,eta,min_order", ODE_ORDERS, ids=[f"{n}-eta{e}" for n, e, _ in ODE_ORDERS])
def test_sampler_converges_to_the_exact_ode_solution_at_its_order(name, eta, min_order):
    x0 = torch.linspace(-3, 3, 7, dtype=torch.float64) * 10
    sampler = sampler_object(name) if eta is None else sampler_object(name).with_options(eta=eta)
    errors = []
    for steps in (16, 32, 64):
        sigmas = karras(steps, 0.05, 10.0).double()[:-1]  # stop at sigma_min: the ODE's solution is exact there
        toy = GaussianDenoiser()
        out = sampler.sample(toy, x0.clone(), sigmas, no_hooks, seed=0)
        errors.append(float((out - toy.exact(x0, float(sigmas[0]), float(sigmas[-1]))).abs().max()))
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert errors[-1] < 0.05  # x0 spans +-30
    assert min(orders) >= min_order, f"{name}: errors {errors}, observed orders {orders}"


def _sigma_now(scheduler, t):
    """The sigma diffusers' scheduler is at (its own bookkeeping, read independently of our code)."""
    index = getattr(scheduler, "step_index", None)
    if index is not None and hasattr(scheduler, "sigmas_interpol") and not scheduler.state_in_first_order:
        return float(scheduler.sigmas_interpol[index])
    if index is not None and getattr(scheduler, "sigmas", None) is not None:
        return float(scheduler.sigmas[index])
    abar = float(scheduler.alphas_cumprod[int(t)])
    return math.sqrt((1 - abar) / abar)


def _run_diffusers(scheduler, x, generator=None):
    toy = GaussianDenoiser()
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        sigma = _sigma_now(scheduler, t)
        eps = toy.eps(x_in * math.sqrt(1 + sigma * sigma), sigma)
        kwargs = {"generator": generator} if generator is not None else {}
        x = scheduler.step(eps, t, x, **kwargs).prev_sample
    return x, toy.calls


def _distinct(sigmas):
    out = [sigmas[0]]
    for value in sigmas[1:]:
        if value != out[-1]:
            out.append(value)
    return torch.stack(out)


# sampler, diffusers class, its options, latent space of the diffusers loop ("ve" = sigma space, "vp" = unit variance)
ORACLES = [
    ("euler", "EulerDiscreteScheduler", {"use_karras_sigmas": True}, "ve"),
    ("heun", "HeunDiscreteScheduler", {"use_karras_sigmas": True}, "ve"),
    ("lms", "LMSDiscreteScheduler", {}, "ve"),
    ("dpm_2", "KDPM2DiscreteScheduler", {}, "ve"),
    ("dpmpp_2m", "DPMSolverMultistepScheduler",
     {"algorithm_type": "dpmsolver++", "solver_order": 2, "final_sigmas_type": "zero"}, "vp"),
    ("uni_pc", "UniPCMultistepScheduler", {"solver_type": "bh1", "solver_order": 3, "final_sigmas_type": "sigma_min"}, "vp"),
    ("uni_pc_bh2", "UniPCMultistepScheduler", {"solver_type": "bh2", "solver_order": 3, "final_sigmas_type": "sigma_min"},
     "vp"),
    ("euler_ancestral", "EulerAncestralDiscreteScheduler", {}, "ve"),
    ("ddim", "DDIMScheduler", {}, "vp"),
]


@pytest.mark.parametrize("name,cls_name,options,space", ORACLES, ids=[o[0] for o in ORACLES])
def test_sampler_matches_diffusers_update_rule_on_the_same_sigmas(name, cls_name, options, space):
    import diffusers

    config = {k: v for k, v in SD1_SCHEDULER_CONFIG.items() if not k.startswith("_")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = getattr(diffusers, cls_name).from_config(config, **options)
    scheduler.set_timesteps(16 if name == "dpmpp_2m" else 10)  # DPM++ lowers its order near the end below 15
    if cls_name == "DDIMScheduler":  # DDIM has no sigma list: its timesteps, then alpha_cumprod[0]'s sigma
        table = ((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod) ** 0.5
        sigmas = torch.cat([table[scheduler.timesteps], table[:1]]).float()
    elif cls_name in ("HeunDiscreteScheduler", "KDPM2DiscreteScheduler"):  # stage sigmas are interleaved
        sigmas = _distinct(scheduler.sigmas.float())
    else:
        sigmas = scheduler.sigmas.float()
    x_ve = torch.linspace(-3, 3, 64).reshape(1, 1, 8, 8) * 14.0 + MU
    start = x_ve / math.sqrt(1 + float(sigmas[0]) ** 2) * (float(scheduler.init_noise_sigma) if space == "ve" else 1.0)
    generator = torch.Generator().manual_seed(5) if name == "euler_ancestral" else None
    reference, calls = _run_diffusers(scheduler, start.clone(), generator)
    if space == "vp":
        reference = reference * math.sqrt(1 + float(sigmas[-1]) ** 2)
    ours_start = start * (1.0 if space == "ve" else math.sqrt(1 + float(sigmas[0]) ** 2))
    toy = GaussianDenoiser()
    out = sampler_object(name).sample(toy, ours_start, sigmas, no_hooks, seed=5)
    assert toy.calls == calls
    assert float((out - reference).abs().max()) <= 1e-5 * float(reference.abs().max())


@pytest.mark.parametrize("name", sorted(STOCHASTIC_SAMPLERS - {"lcm", "dpmpp_sde_gpu", "dpmpp_2m_sde_gpu"}))
def test_stochastic_sampler_approaches_the_data_distribution(name):
    sde = "sde" in name  # Brownian-tree samplers cost more per element: fewer samples
    n = 2 ** 13 if sde else 2 ** 15
    gen = torch.Generator().manual_seed(0)
    errors = []
    for steps in (4, 16, 64):
        sigmas = karras(steps, 0.0292, 14.6146)
        x = MU + math.sqrt(S ** 2 + 14.6146 ** 2) * torch.randn(1, 1, 64, n // 64, generator=gen)
        out = sampler_object(name).sample(GaussianDenoiser(), x, sigmas, no_hooks, seed=1)
        errors.append(abs(float(out.var()) / S ** 2 - 1))
        assert abs(float(out.mean()) - MU) < 0.02
    assert errors[0] > errors[2] and errors[1] > errors[2], errors
    assert errors[2] < 0.15, errors


def test_ddpm_is_ancestral_euler_in_sigma_space():
    x = 14.6 * torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    sigmas = karras(12, 0.0292, 14.6146)
    ddpm = sampler_object("ddpm").sample(GaussianDenoiser(), x, sigmas, no_hooks, seed=7)
    euler_a = sampler_object("euler_ancestral").sample(GaussianDenoiser(), x, sigmas, no_hooks, seed=7)
    torch.testing.assert_close(ddpm, euler_a, rtol=1e-4, atol=1e-4)


def test_lcm_variance_follows_its_moment_recursion():
    """LCM jumps to D(x) and re-noises: var' = a^2 var + sigma'^2 with a = s^2 / (s^2 + sigma^2)."""
    sigmas = karras(6, 0.0292, 14.6146).double()
    var = S ** 2 + float(sigmas[0]) ** 2
    for i in range(len(sigmas) - 1):
        a = S ** 2 / (S ** 2 + float(sigmas[i]) ** 2)
        var = a * a * var + float(sigmas[i + 1]) ** 2
    x = MU + math.sqrt(S ** 2 + float(sigmas[0]) ** 2) * torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(2))
    out = sampler_object("lcm").sample(GaussianDenoiser(), x.double(), sigmas, no_hooks, seed=3)
    assert float(out.var()) == pytest.approx(var, rel=0.02)


@pytest.mark.parametrize("name", sorted(STOCHASTIC_SAMPLERS))
def test_stochastic_sampler_is_reproducible_from_its_seed(name):
    x = 14.6 * torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    sigmas = karras(5, 0.0292, 14.6146)
    run = lambda seed: sampler_object(name).sample(GaussianDenoiser(), x.clone(), sigmas, no_hooks, seed=seed)  # noqa: E731
    assert torch.equal(run(11), run(11))
    assert not torch.allclose(run(11), run(12))


@pytest.mark.parametrize("name,calls", [("euler", 10), ("heun", 19), ("dpm_2", 19), ("lms", 10), ("dpmpp_2m", 10),
                                        ("uni_pc", 10), ("dpmpp_sde", 19), ("dpmpp_2s_ancestral", 19)])
def test_model_calls_per_run(name, calls):
    """First-order steps to sigma 0; UniPC's corrector reuses its model call for the next step."""
    toy = GaussianDenoiser()
    sampler_object(name).sample(toy, torch.ones(1, 1, 2, 2) * 14, karras(10, 0.0292, 14.6146), no_hooks, seed=0)
    assert toy.calls == calls
