"""EMA merge nodes: results equal the formula θ_ema ← α·θ_ema + (1−α)·θ, inputs are unchanged, merged
modules still run, and the checkpoint-list fold equals diffusers' EMAModel stepping the same snapshots."""
from __future__ import annotations

import shutil

import pytest
import torch
from diffusers.training_utils import EMAModel
from sd_helpers import loaded, same_state, sandbox_paths, state_fingerprint, tiny_checkpoint

from nodes.conditioning_nodes import CLIPTextEncode
from nodes.ema_nodes import CheckpointListEMA, CheckpointMergeEMA, CLIPMergeEMA, ModelMergeEMA, VAEMergeEMA
from nodes.latent_nodes import VAEDecode
from nodes.sd.ema import ema_decay
from nodes.sd.loader import checkpoint_state_dict


@pytest.fixture
def sd_paths(tmp_path):
    yield from sandbox_paths(tmp_path)


def _check_formula(result, ema, other, decay):
    for key, value in result.state_dict().items():
        expected = decay * ema.state_dict()[key] + (1 - decay) * other.state_dict()[key]
        assert torch.allclose(value, expected, atol=1e-6, rtol=0), key


def test_model_merge_ema_is_the_formula_and_leaves_inputs_unchanged():
    ema, model = loaded(0)[0], loaded(1)[0]
    before = (state_fingerprint(ema.unet), state_fingerprint(model.unet))
    ema_with_option = ema.with_option("marker", 1)
    (merged,) = ModelMergeEMA().run(ema_with_option, model, 0.9)
    _check_formula(merged.unet, ema.unet, model.unet, 0.9)
    assert same_state(ema.unet, before[0]) and same_state(model.unet, before[1])
    assert merged.unet is not ema.unet and merged.options == {"marker": 1} and "marker" not in ema.options
    assert merged.scheduler_config == ema.scheduler_config and not merged.unet.training
    with torch.no_grad():  # the new module is complete (no meta tensors) and runs
        assert torch.isfinite(merged.unet(torch.randn(1, 4, 8, 8), 10, torch.randn(1, 77, 32)).sample).all()
    (same,) = ModelMergeEMA().run(ema, model, 1.0)
    assert all(torch.equal(v, ema.unet.state_dict()[k]) for k, v in same.unet.state_dict().items())


def test_clip_vae_and_checkpoint_merges_produce_working_objects():
    (m0, c0, v0), (m1, c1, v1) = loaded(0), loaded(1)
    before = [state_fingerprint(x) for x in (c0.text_encoder, c1.text_encoder, v0.vae, v1.vae)]
    (clip,) = CLIPMergeEMA().run(c0, c1, 0.75)
    (vae,) = VAEMergeEMA().run(v0, v1, 0.75)
    _check_formula(clip.text_encoder, c0.text_encoder, c1.text_encoder, 0.75)
    _check_formula(vae.vae, v0.vae, v1.vae, 0.75)
    assert CLIPTextEncode().run("a photo of a cat", clip)[0][0][0].shape == (1, 77, 32)  # position_ids rebuilt
    assert VAEDecode().run({"samples": torch.zeros(1, 4, 2, 2)}, vae)[0].shape == (1, 16, 16, 3)
    model, clip2, vae2 = CheckpointMergeEMA().run(m0, c0, v0, m1, c1, v1, 0.5)
    _check_formula(model.unet, m0.unet, m1.unet, 0.5)
    _check_formula(clip2.text_encoder, c0.text_encoder, c1.text_encoder, 0.5)
    assert all(same_state(x, b) for x, b in zip((c0.text_encoder, c1.text_encoder, v0.vae, v1.vae), before, strict=True))


def test_merging_different_architectures_fails_clearly():
    from nodes.sd.loader import load_checkpoint
    from nodes.sd.tiny import write_tiny_checkpoint

    other = load_checkpoint(write_tiny_checkpoint(tiny_checkpoint().parent / "wide.safetensors",
                                                  unet_channels=(32, 96)), "cpu")[0]
    with pytest.raises(ValueError, match="shape"):
        ModelMergeEMA().run(loaded(0)[0], other, 0.9)


@pytest.mark.parametrize("mode", ["diffusers_default", "diffusers_power"])
def test_decay_schedule_equals_ema_model_get_decay(mode):
    ema = EMAModel([torch.nn.Parameter(torch.zeros(1))], decay=0.999, use_ema_warmup=mode == "diffusers_power",
                   power=0.75, inv_gamma=1.0)
    for step in (1, 2, 3, 10, 100, 1000, 10000, 100000):
        assert ema_decay(step, 0.999, mode, power=0.75) == ema.get_decay(step)
    assert ema_decay(5, 0.9, "none") == 0.9


def _ema_model_fold(snapshots, decay, mode, power=2 / 3):
    keys = [k for k, v in snapshots[0].items() if v.is_floating_point()]  # position_ids is an int buffer
    ema = EMAModel([torch.nn.Parameter(snapshots[0][k].clone()) for k in keys], decay=decay,
                   use_ema_warmup=mode == "diffusers_power", power=power, inv_gamma=1.0)
    for snap in snapshots[1:]:
        ema.step([torch.nn.Parameter(snap[k]) for k in keys])  # requires_grad: the averaging branch
    return {**snapshots[0], **dict(zip(keys, ema.shadow_params, strict=True))}


@pytest.mark.parametrize("mode", ["diffusers_default", "diffusers_power", "none"])
def test_checkpoint_list_fold_equals_ema_model(sd_paths, mode):
    folder = sd_paths.base / "models" / "checkpoints" / "run"
    folder.mkdir()
    for seed, step in ((0, 9), (1, 10), (2, 100)):  # natural order: 9, 10, 100
        shutil.copy(tiny_checkpoint(seed), folder / f"step_{step}.safetensors")
    model, clip, vae = CheckpointListEMA().run("run/step_*.safetensors", 0.9, mode, 0.6667)
    snapshots = [checkpoint_state_dict(*loaded(seed)) for seed in (0, 1, 2)]
    if mode == "none":
        expected = snapshots[0]
        for snap in snapshots[1:]:
            expected = {k: 0.9 * v + 0.1 * snap[k] if v.is_floating_point() else v for k, v in expected.items()}
        tol = 1e-6
    else:
        expected, tol = _ema_model_fold(snapshots, 0.9, mode, 0.6667), 0.0
    got = checkpoint_state_dict(model, clip, vae)
    assert set(got) == set(expected)
    for key in got:
        assert torch.allclose(got[key], expected[key].to(got[key].dtype), atol=tol, rtol=0), key
    # Listing the files explicitly (in a different order) gives a different, order-dependent result.
    reordered = CheckpointListEMA().run("run/step_100.safetensors\nrun/step_9.safetensors\nrun/step_10.safetensors",
                                        0.9, mode, 0.6667)[0]
    assert not torch.equal(reordered.unet.state_dict()["conv_in.weight"], model.unet.state_dict()["conv_in.weight"])


def test_checkpoint_list_reports_missing_files(sd_paths):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        CheckpointListEMA().run("nothing_here_*.safetensors", 0.9, "none", 0.6667)
    with pytest.raises(ValueError, match="no checkpoints"):
        CheckpointListEMA().run("\n# only a comment\n", 0.9, "none", 0.6667)
    fingerprint = CheckpointListEMA.IS_CHANGED("tiny.safetensors")
    assert fingerprint == CheckpointListEMA.IS_CHANGED("tiny.safetensors")
