"""Schedules pinned: SD1's sigma table, ComfyUI's schedules against diffusers' flags where they agree,
timestep choices, and KSampler's sigma selection (denoise, start/end steps, discarded penultimate sigma)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from nodes.sampling import SCHEDULER_NAMES, ModelSampling, calculate_sigmas, ksampler_sigmas
from nodes.sampling.model_sampling import SD1_SCHEDULER_CONFIG
from nodes.sampling.schedules import karras

MS = ModelSampling.from_config(SD1_SCHEDULER_CONFIG)
DIFFUSERS_CONFIG = {k: v for k, v in SD1_SCHEDULER_CONFIG.items() if not k.startswith("_")}


class _Model:  # what ksampler_sigmas reads from a MODEL
    scheduler_config = SD1_SCHEDULER_CONFIG


def _diffusers_sigmas(steps: int, **flags) -> torch.Tensor:
    from diffusers import EulerDiscreteScheduler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = EulerDiscreteScheduler.from_config(DIFFUSERS_CONFIG, **flags)
        scheduler.set_timesteps(steps)
    return scheduler.sigmas.float()


def test_sd1_sigma_range_is_pinned():
    assert MS.sigma_min == pytest.approx(0.0291675, rel=2e-5)
    assert MS.sigma_max == pytest.approx(14.614642, rel=1e-6)
    assert len(MS.sigmas) == 1000 and bool((MS.sigmas[1:] > MS.sigmas[:-1]).all())


def test_timestep_and_sigma_are_inverse_on_training_timesteps():
    t = torch.arange(0, 1000, 37).float()
    assert torch.equal(MS.timestep(MS.sigma(t)), t)
    assert float(MS.sigma(torch.tensor(10.5))) == pytest.approx(math.sqrt(float(MS.sigmas[10] * MS.sigmas[11])), rel=1e-5)


def test_karras_pinned_for_sd1():
    sigmas = calculate_sigmas(MS, "karras", 10)
    assert sigmas.dtype == torch.float32 and len(sigmas) == 11 and float(sigmas[-1]) == 0.0
    assert float(sigmas[0]) == pytest.approx(14.6146, rel=1e-5)
    assert float(sigmas[-2]) == pytest.approx(0.0292, rel=2e-3)
    rho, lo, hi = 7.0, 0.02916716 ** (1 / 7), 14.614641 ** (1 / 7)
    expected = [(hi + i / 9 * (lo - hi)) ** rho for i in range(10)]
    np.testing.assert_allclose(sigmas[:-1].numpy(), expected, rtol=1e-5)
    assert float(karras(10, 0.0292, 14.6146)[5]) == pytest.approx(0.91442, abs=1e-5)


@pytest.mark.parametrize("name,flags,rtol", [
    ("normal", {"timestep_spacing": "linspace"}, 1e-4),
    ("karras", {"timestep_spacing": "linspace", "use_karras_sigmas": True}, 1e-4),
    ("exponential", {"timestep_spacing": "linspace", "use_exponential_sigmas": True}, 1e-4),
    ("simple", {"timestep_spacing": "trailing"}, 1e-4),
    ("ddim_uniform", {"timestep_spacing": "leading", "steps_offset": 1}, 1e-4),
])
def test_schedule_equals_diffusers_flag(name, flags, rtol):
    ours, theirs = calculate_sigmas(MS, name, 20), _diffusers_sigmas(20, **flags)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("name,expected", [
    ("normal", [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]),
    ("simple", [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]),
    ("ddim_uniform", [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]),
    ("sgm_uniform", [999, 899, 799, 699, 599, 500, 400, 300, 200, 100]),  # linspace(999, 0, 11)[:-1]
])
def test_schedule_timestep_choices(name, expected):
    sigmas = calculate_sigmas(MS, name, 10)
    assert MS.timestep(sigmas[:-1]).long().tolist() == expected
    assert float(sigmas[-1]) == 0.0


def test_sgm_uniform_and_beta_differ_from_their_diffusers_counterparts():
    """As measured: sgm_uniform is not "trailing" at the tail, beta is not use_beta_sigmas."""
    assert not torch.allclose(calculate_sigmas(MS, "sgm_uniform", 20), _diffusers_sigmas(20, timestep_spacing="trailing"),
                              rtol=1e-3)
    beta = calculate_sigmas(MS, "beta", 20)
    assert not torch.allclose(beta, _diffusers_sigmas(20, use_beta_sigmas=True), rtol=1e-2)


def test_beta_schedule_is_beta_quantiles_on_training_timesteps():
    from scipy import stats

    sigmas = calculate_sigmas(MS, "beta", 20)
    quantiles = stats.beta.ppf(1 - np.arange(20) / 20, 0.6, 0.6) * 999
    expected_t = list(dict.fromkeys(int(t) for t in np.rint(quantiles)))
    assert MS.timestep(sigmas[:-1]).long().tolist() == expected_t
    assert float(sigmas[-1]) == 0.0 and float(sigmas[0]) == pytest.approx(MS.sigma_max)


def test_kl_optimal_is_uniform_in_arctan_sigma():
    sigmas = calculate_sigmas(MS, "kl_optimal", 8)
    angles = torch.atan(sigmas[:-1].double())
    np.testing.assert_allclose(np.diff(angles.numpy()), np.full(7, float(angles[1] - angles[0])), rtol=1e-4)
    assert float(sigmas[0]) == pytest.approx(MS.sigma_max, rel=1e-5)


def test_linear_quadratic_is_a_linear_then_quadratic_fraction_of_sigma_max():
    sigmas = calculate_sigmas(MS, "linear_quadratic", 10)
    frac = 1 - sigmas.double() / MS.sigma_max
    np.testing.assert_allclose(frac[:5].numpy(), [0, 0.005, 0.01, 0.015, 0.02], atol=1e-6)
    assert float(frac[-1]) == pytest.approx(1.0) and bool((frac[1:] > frac[:-1]).all())


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
@pytest.mark.parametrize("steps", [1, 3, 20])
def test_every_schedule_decreases_to_zero(name, steps):
    sigmas = calculate_sigmas(MS, name, steps)
    assert sigmas.dtype == torch.float32 and float(sigmas[-1]) == 0.0
    assert 2 <= len(sigmas) <= steps + 1 and bool((sigmas[1:] < sigmas[:-1]).all())


def test_unknown_scheduler_names_the_valid_ones():
    with pytest.raises(ValueError, match="karras"):
        calculate_sigmas(MS, "karas", 10)


def test_ksampler_denoise_keeps_the_tail_of_a_longer_schedule():
    sigmas = ksampler_sigmas(_Model(), "euler", "normal", 10, denoise=0.5)
    assert torch.equal(sigmas, calculate_sigmas(MS, "normal", 20)[-11:])
    assert len(ksampler_sigmas(_Model(), "euler", "normal", 10, denoise=0.0)) == 0


def test_ksampler_discards_the_penultimate_sigma_for_dpm_2_and_uni_pc():
    full = calculate_sigmas(MS, "karras", 11)
    for name in ("dpm_2", "uni_pc"):
        sigmas = ksampler_sigmas(_Model(), name, "karras", 10)
        assert len(sigmas) == 11 and torch.equal(sigmas, torch.cat([full[:-2], full[-1:]]))


def test_ksampler_advanced_start_and_end_steps():
    full = calculate_sigmas(MS, "karras", 10)
    assert torch.equal(ksampler_sigmas(_Model(), "euler", "karras", 10, start_step=3, last_step=7), full[3:8])
    forced = ksampler_sigmas(_Model(), "euler", "karras", 10, start_step=3, last_step=7, force_full_denoise=True)
    assert torch.equal(forced[:-1], full[3:7]) and float(forced[-1]) == 0.0
    assert len(ksampler_sigmas(_Model(), "euler", "karras", 10, start_step=10)) == 0


def test_v_prediction_denoised_matches_the_vp_formula():
    ms = ModelSampling.from_config({**SD1_SCHEDULER_CONFIG, "prediction_type": "v_prediction"})
    sigma = torch.tensor(2.0)
    x_ve, v = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    abar = 1 / (1 + sigma ** 2)
    x_vp = x_ve * abar.sqrt()
    expected = abar.sqrt() * x_vp - (1 - abar).sqrt() * v  # Salimans & Ho 2022: x0 = alpha x_t - sigma v
    torch.testing.assert_close(ms.denoised(sigma, v, x_ve), expected)
