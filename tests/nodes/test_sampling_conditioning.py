"""Conditioning in the denoiser: areas (with ComfyUI's 8-pixel feathering), strengths, masks, timestep
ranges, mirrored negative areas and mixed prompt lengths, each against UNet calls composed by hand."""
from __future__ import annotations

import pytest
import torch

from nodes.sampling import SamplingState, model_sampling
from nodes.sampling.denoiser import Denoiser
from tests.nodes.sampling_toy import conditioning, tiny_model

SHAPE = (1, 4, 16, 16)


@pytest.fixture(scope="module")
def model():
    return tiny_model(1, counting=True)


def _unet(model, x, t, context):
    with torch.inference_mode():
        return model.unet(x, t.expand(x.shape[0]), encoder_hidden_states=context, return_dict=False)[0]


def _predict(model, positive, negative, sigma, with_uncond=False, x=None):
    ms = model_sampling(model)
    den = Denoiser(model, ms, positive, negative, SamplingState(7.5, 1), SHAPE)
    x = x if x is not None else torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    t = ms.timestep(torch.tensor(sigma))
    with torch.inference_mode():
        cond, uncond = den.predict(x, t, sigma, with_uncond)
    return den, x, t, cond, uncond


def _feather_by_hand(h, w, top, bottom, left, right):
    weight = torch.ones(h, w)
    for i in range(8):
        if top:
            weight[i, :] *= (i + 1) / 8
        if bottom:
            weight[h - 1 - i, :] *= (i + 1) / 8
        if left:
            weight[:, i] *= (i + 1) / 8
        if right:
            weight[:, w - 1 - i] *= (i + 1) / 8
    return weight


def test_area_with_strength_is_a_feathered_weighted_average(model):
    full = conditioning(1)
    corner = conditioning(2, area=(8, 12, 0, 4), strength=2.0)  # (h, w, y, x) in latent pixels
    _, x, t, cond, _ = _predict(model, full + corner, conditioning(3), 5.0)
    out_full = _unet(model, x, t, full[0][0])
    out_corner = _unet(model, x[:, :, 0:8, 4:16], t, corner[0][0])
    weight = torch.zeros(16, 16)
    weight[0:8, 4:16] = 2.0 * _feather_by_hand(8, 12, top=False, bottom=True, left=True, right=False)
    summed = out_full.clone()
    summed[:, :, 0:8, 4:16] += out_corner * weight[0:8, 4:16]
    torch.testing.assert_close(cond, summed / (1 + weight), rtol=1e-5, atol=1e-5)


def test_percentage_area_and_mirrored_negative_area(model):
    pos = conditioning(1, area=("percentage", 0.5, 0.5, 0.5, 0.0))
    den, *_ = _predict(model, pos, conditioning(3), 5.0)
    assert den.cond[0].area == (8, 8, 8, 0)
    assert [e.area for e in den.uncond] == [(16, 16, 0, 0), (8, 8, 8, 0)]  # uncond predicted over the same crop


def test_mask_weights_and_set_area_to_bounds(model):
    mask = torch.zeros(1, 16, 16)
    mask[:, :, :8] = 1.0
    a, b = conditioning(1, mask=mask, mask_strength=1.0), conditioning(2)
    _, x, t, cond, _ = _predict(model, a + b, conditioning(3), 5.0)
    out_a, out_b = _unet(model, x, t, a[0][0]), _unet(model, x, t, b[0][0])
    torch.testing.assert_close(cond[..., :8], (out_a[..., :8] + out_b[..., :8]) / 2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cond[..., 8:], out_b[..., 8:], rtol=1e-5, atol=1e-5)
    bounded = conditioning(1, mask=mask, set_area_to_bounds=True)
    den, *_ = _predict(model, bounded, conditioning(3), 5.0)
    assert den.cond[0].area == (16, 8, 0, 0)


def test_timestep_ranges_switch_prompts_by_sigma(model):
    early = conditioning(1, start_percent=0.0, end_percent=0.5)
    late = conditioning(2, start_percent=0.5, end_percent=1.0)
    for sigma, which in ((14.0, early), (0.1, late)):
        _, x, t, cond, _ = _predict(model, early + late, conditioning(3), sigma)
        torch.testing.assert_close(cond, _unet(model, x, t, which[0][0]), rtol=1e-5, atol=1e-5)


def test_long_and_short_prompts_share_one_batched_call(model):
    long_prompt = conditioning(1, tokens=154)
    short_prompt = conditioning(2)
    model.unet.batches.clear()
    _, x, t, cond, uncond = _predict(model, long_prompt, short_prompt, 3.0, with_uncond=True)
    assert model.unet.batches == [2]  # cond and uncond together, the short prompt repeated to 154 tokens
    torch.testing.assert_close(cond, _unet(model, x, t, long_prompt[0][0]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(uncond, _unet(model, x, t, short_prompt[0][0]), rtol=1e-4, atol=1e-5)


def test_malformed_conditioning_names_the_expected_shape(model):
    with pytest.raises(TypeError, match="list of \\[tensor, dict\\] pairs"):
        _predict(model, torch.zeros(1, 77, 32), conditioning(3), 1.0)
