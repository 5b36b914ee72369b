"""The custom-sampling nodes compose to the same results as KSampler: SamplerCustom(KSamplerSelect,
BasicScheduler), SamplerCustomAdvanced with RandomNoise/CFGGuider, SplitSigmas chains, BasicGuider."""
from __future__ import annotations

import pytest
import torch

from nodes.sampling_custom_nodes import (
    BasicGuider,
    BasicScheduler,
    CFGGuider,
    DisableNoise,
    ExponentialScheduler,
    KarrasScheduler,
    KSamplerSelect,
    RandomNoise,
    SamplerCustom,
    SamplerCustomAdvanced,
    SplitSigmas,
)
from nodes.sampling_nodes import KSampler
from tests.nodes.sampling_toy import conditioning, tiny_model

POS, NEG = conditioning(1), conditioning(2)


@pytest.fixture(scope="module")
def model():
    return tiny_model(0)


def latent():
    return {"samples": torch.zeros(1, 4, 16, 16)}


def custom(model, sampler_name, sigmas, lat=None, add_noise=True, seed=3, cfg=7.5):
    sampler = KSamplerSelect().run(sampler_name)[0]
    return SamplerCustom().run(model, add_noise, seed, cfg, POS, NEG, sampler, sigmas, lat or latent())


@pytest.mark.parametrize("sampler_name", ["euler", "dpmpp_2m", "euler_ancestral"])
def test_sampler_custom_equals_ksampler(model, sampler_name):
    sigmas = BasicScheduler().run(model, "karras", 5, 1.0)[0]
    out, denoised = custom(model, sampler_name, sigmas)
    expected = KSampler().run(model, 3, 5, 7.5, sampler_name, "karras", POS, NEG, latent(), 1.0)[0]
    assert torch.equal(out["samples"], expected["samples"])
    torch.testing.assert_close(denoised["samples"], out["samples"])  # the last step lands on x0


def test_split_sigmas_chain_and_denoised_output(model):
    sigmas = BasicScheduler().run(model, "normal", 6, 1.0)[0]
    high, low = SplitSigmas().run(sigmas, 2)
    assert torch.equal(high, sigmas[:3]) and torch.equal(low, sigmas[2:])
    first, first_x0 = custom(model, "euler", high)
    assert not torch.allclose(first["samples"], first_x0["samples"], atol=1e-2)  # leftover noise vs x0 estimate
    second, _ = custom(model, "euler", low, lat=first, add_noise=False)
    full, _ = custom(model, "euler", sigmas)
    torch.testing.assert_close(second["samples"], full["samples"], rtol=1e-4, atol=1e-4)


def test_sampler_custom_advanced_with_noise_and_guider_nodes(model):
    sigmas = BasicScheduler().run(model, "karras", 4, 1.0)[0]
    sampler = KSamplerSelect().run("heun")[0]
    guider = CFGGuider().run(model, POS, NEG, 7.5)[0]
    out, _ = SamplerCustomAdvanced().run(RandomNoise().run(3)[0], guider, sampler, sigmas, latent())
    assert torch.equal(out["samples"], custom(model, "heun", sigmas)[0]["samples"])
    basic = BasicGuider().run(model, POS)[0]
    out_basic, _ = SamplerCustomAdvanced().run(RandomNoise().run(3)[0], basic, sampler, sigmas, latent())
    torch.testing.assert_close(out_basic["samples"], custom(model, "heun", sigmas, cfg=1.0)[0]["samples"])
    lat = {"samples": torch.randn(1, 4, 16, 16)}
    quiet, _ = SamplerCustomAdvanced().run(DisableNoise().run()[0], guider, sampler, sigmas[2:], lat)
    assert torch.equal(quiet["samples"], custom(model, "heun", sigmas[2:], lat=lat, add_noise=False)[0]["samples"])


def test_basic_scheduler_denoise_and_explicit_sigma_nodes(model):
    tail = BasicScheduler().run(model, "simple", 4, 0.5)[0]
    assert torch.equal(tail, BasicScheduler().run(model, "simple", 8, 1.0)[0][-5:])
    assert len(BasicScheduler().run(model, "simple", 4, 0.0)[0]) == 0
    karras = KarrasScheduler().run(10, 14.614642, 0.0291675, 7.0)[0]
    torch.testing.assert_close(karras, BasicScheduler().run(model, "karras", 10, 1.0)[0], rtol=2e-5, atol=0)
    exp = ExponentialScheduler().run(10, 14.614642, 0.0291675)[0]
    torch.testing.assert_close(exp, BasicScheduler().run(model, "exponential", 10, 1.0)[0], rtol=2e-5, atol=0)
