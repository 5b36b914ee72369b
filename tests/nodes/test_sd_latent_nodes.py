"""Latent and VAE nodes: decode/encode pinned against the diffusers AutoencoderKL with the same weights,
tiled passes against whole passes, inpaint masking, ComfyUI's resize/composite rules, bislerp."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from sd_helpers import loaded, reference

from nodes.latent_nodes import (
    EmptyLatentImage,
    LatentComposite,
    LatentUpscale,
    LatentUpscaleBy,
    VAEDecode,
    VAEDecodeTiled,
    VAEEncode,
    VAEEncodeForInpaint,
    VAEEncodeTiled,
)
from nodes.sd.resize import bislerp
from nodes.sd.vae import tiled_apply

TOL = 1e-5


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_empty_latent_is_zeros_at_one_eighth_size():
    (latent,) = EmptyLatentImage().run(64, 48, 3)
    assert latent["samples"].shape == (3, 4, 6, 8) and torch.count_nonzero(latent["samples"]) == 0
    spec = EmptyLatentImage.INPUT_TYPES()["required"]
    assert spec["width"][1] == {"default": 512, "min": 16, "max": 16384, "step": 8}
    assert spec["batch_size"][1] == {"default": 1, "min": 1, "max": 4096}


def test_vae_decode_matches_the_reference_vae():
    _, _, vae = loaded()
    ref = reference()[1]
    z = torch.randn(5, 4, 4, 6, generator=_gen())  # more than one internal batch of 4
    (image,) = VAEDecode().run({"samples": z}, vae)
    with torch.no_grad():
        expected = ((ref.decode(z).sample + 1) / 2).clamp(0, 1).movedim(1, -1)
    assert image.shape == (5, 32, 48, 3) and (image - expected).abs().max() <= TOL


def test_vae_encode_matches_the_reference_and_crops_to_multiples_of_8():
    _, _, vae = loaded()
    ref = reference()[1]
    image = torch.rand(2, 35, 42, 4, generator=_gen(1))  # odd sizes and an alpha channel
    (latent,) = VAEEncode().run(image, vae)
    cropped = image[:, 1:33, 1:41, :3]  # centred: offsets (35 % 8) // 2 and (42 % 8) // 2
    with torch.no_grad():
        expected = ref.encode(cropped.movedim(-1, 1) * 2 - 1).latent_dist.mode()
    assert latent["samples"].shape == (2, 4, 4, 5) and (latent["samples"] - expected).abs().max() <= TOL


def test_tiled_vae_nodes_equal_whole_passes_when_one_tile_covers_the_input():
    _, _, vae = loaded()
    z = torch.randn(1, 4, 6, 8, generator=_gen(2))
    whole = VAEDecode().run({"samples": z}, vae)[0]
    tiled = VAEDecodeTiled().run({"samples": z}, vae, 512, 64, 64, 8)[0]
    assert (whole - tiled).abs().max() <= TOL
    image = torch.rand(1, 48, 64, 3, generator=_gen(3))
    whole_z = VAEEncode().run(image, vae)[0]["samples"]
    tiled_z = VAEEncodeTiled().run(image, vae, 512, 64, 64, 8)[0]["samples"]
    assert (whole_z - tiled_z).abs().max() <= TOL
    small = VAEDecodeTiled().run({"samples": torch.randn(1, 4, 20, 20, generator=_gen(4))}, vae, 64, 32, 64, 8)[0]
    assert small.shape == (1, 160, 160, 3) and torch.isfinite(small).all()


@pytest.mark.parametrize("scale", [8.0, 1 / 8])
def test_tiles_blend_back_to_the_whole_result_for_a_local_operation(scale):
    # For an operation without spatial context, the feathered blend of overlapping tiles must give
    # exactly the untiled result: this checks tile positions, masks and normalisation.
    x = torch.randn(2, 3, 40, 56, generator=_gen(5))
    if scale > 1:
        def fn(t):
            return F.interpolate(t, scale_factor=8, mode="nearest")
        x = x[:, :, :5, :7]
        tile, overlap = (2, 3), 1
    else:
        def fn(t):
            return F.avg_pool2d(t, 8)
        tile, overlap = (16, 24), 8
    out = tiled_apply(x, fn, tile, overlap, scale, 3)
    assert torch.allclose(out, fn(x), atol=1e-6)


def test_encode_for_inpaint_greys_the_mask_and_grows_the_noise_mask():
    _, _, vae = loaded()
    image = torch.rand(1, 32, 40, 3, generator=_gen(6))
    mask = torch.zeros(1, 32, 40)
    mask[:, 8:16, 16:24] = 1.0
    (latent,) = VAEEncodeForInpaint().run(image, vae, mask, 6)
    masked = image.clone()
    masked[:, 8:16, 16:24] = 0.5
    assert (latent["samples"] - VAEEncode().run(masked, vae)[0]["samples"]).abs().max() <= TOL
    grown = latent["noise_mask"]
    assert grown.shape == (1, 1, 32, 40)
    # A 6x6 box filter with padding 3 (output one larger, cropped) grows 2 pixels up/left, 3 down/right.
    expected = torch.zeros(1, 1, 32, 40)
    expected[:, :, 6:19, 14:27] = 1.0
    assert torch.equal(grown, expected)
    assert torch.equal(VAEEncodeForInpaint().run(image, vae, mask, 0)[0]["noise_mask"], mask[:, None])


def test_latent_upscale_follows_comfyui_size_rules():
    samples = torch.randn(1, 4, 8, 12, generator=_gen(7))
    latent = {"samples": samples, "noise_mask": torch.ones(1, 1, 64, 96)}
    (out,) = LatentUpscale().run(latent, "bilinear", 192, 0, "disabled")
    assert out["samples"].shape == (1, 4, 16, 24) and out["noise_mask"] is latent["noise_mask"]
    assert torch.equal(out["samples"], F.interpolate(samples, size=(16, 24), mode="bilinear"))
    assert LatentUpscale().run(latent, "nearest-exact", 0, 0, "disabled")[0] is latent
    assert LatentUpscale().run(latent, "area", 8, 8, "disabled")[0]["samples"].shape[-2:] == (8, 8)  # min 64 px
    (centre,) = LatentUpscale().run(latent, "nearest-exact", 64, 64, "center")
    assert torch.equal(centre["samples"], F.interpolate(samples[:, :, :, 2:10], size=(8, 8), mode="nearest-exact"))
    (by,) = LatentUpscaleBy().run(latent, "bicubic", 1.5)
    assert by["samples"].shape == (1, 4, 12, 18)


def test_bislerp_interpolates_direction_and_length():
    direction = F.normalize(torch.randn(1, 4, 1, 1, generator=_gen(8)), dim=1)
    lengths = torch.rand(1, 1, 5, 7, generator=_gen(9)) + 0.5
    parallel = direction * lengths  # all vectors parallel: slerp reduces to bilinear
    assert torch.allclose(bislerp(parallel, 11, 9), F.interpolate(parallel, size=(9, 11), mode="bilinear"), atol=1e-5)
    a, b = torch.tensor([1.0, 0, 0, 0]), torch.tensor([0, 1.0, 0, 0])
    row = torch.stack([a, b], dim=-1)[None, :, None, :]  # [1,4,1,2]: two orthogonal unit vectors
    mid = bislerp(row, 4, 1)[0, :, 0, 1]  # the sample at position 0.25 between them
    assert mid.norm().item() == pytest.approx(1.0, abs=1e-5)  # bilinear would give ~0.79
    assert mid[1] / mid[0] == pytest.approx(math.tan(math.pi / 8), abs=1e-5)


def test_latent_composite_pastes_and_feathers_like_comfyui():
    dst = {"samples": torch.zeros(1, 4, 8, 8), "batch_index": [0]}
    src = {"samples": torch.ones(1, 4, 4, 4)}
    (plain,) = LatentComposite().run(dst, src, 16, 8, 0)
    assert torch.equal(plain["samples"][0, 0, 1:5, 2:6], torch.ones(4, 4))
    assert plain["samples"].sum() == 64 and plain["batch_index"] == [0]
    (soft,) = LatentComposite().run(dst, src, 16, 8, 16)  # feather 2 cells on the edges inside dst
    ramp = torch.tensor([0.5, 1.0, 1.0, 0.5])
    assert torch.allclose(soft["samples"][0, 0, 1:5, 2:6], ramp[:, None] * ramp[None, :])
    (edge,) = LatentComposite().run(dst, {"samples": torch.ones(1, 4, 8, 8)}, 32, 32, 16)  # clipped at the border
    assert torch.allclose(edge["samples"][0, 0, 4, 4:], torch.tensor([0.25, 0.5, 0.5, 0.5]))
    assert torch.count_nonzero(dst["samples"]) == 0 and torch.equal(src["samples"], torch.ones(1, 4, 4, 4))
