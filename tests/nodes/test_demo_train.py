"""The demo training recipe: seeded reproducibility, diffusers' EMA rule, exact latent rescaling, file layout."""
from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from nodes.demo import dataset, models, train
from nodes.sd.loader import load_checkpoint


def _tiny_run(out_dir) -> dict:
    cfg = train.TrainConfig(out_dir=str(out_dir), vae_steps=2, vae_batch=4, latents=16, unet_steps=3,
                            unet_batch=4, snapshots=1, eval_prompts=2, threads=1)
    return train.run(cfg)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("run_a"), tmp_path_factory.mktemp("run_b")
    return (a, _tiny_run(a)), (b, _tiny_run(b))


@pytest.mark.slow
def test_same_seed_gives_identical_checkpoints(two_runs):
    (a, _), (b, _) = two_runs
    for name in ("diffgraph-shapes.safetensors", "diffgraph-shapes-raw.safetensors"):
        ta, tb = load_file(a / name), load_file(b / name)
        assert ta.keys() == tb.keys()
        assert all(torch.equal(ta[k], tb[k]) for k in ta)


@pytest.mark.slow
def test_run_writes_raw_ema_snapshots_and_a_loadable_original_layout(two_runs):
    (out, summary), _ = two_runs
    raw, ema = load_file(out / "diffgraph-shapes-raw.safetensors"), load_file(out / "diffgraph-shapes.safetensors")
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if k.startswith("model.diffusion_model."))
    assert {k.split(".")[0] for k in ema} == {"model", "first_stage_model", "cond_stage_model"}
    assert (out / "snapshots" / "step00003.png").is_file()
    assert (out / "snapshots" / "step00003-ema.safetensors").is_file()
    assert json.loads((out / "summary.json").read_text())["history"][0]["step"] == 3
    model, clip, vae = load_checkpoint(out / "diffgraph-shapes.safetensors", "cpu")
    assert list(model.unet.config.block_out_channels) == list(models.UNET_CONFIG["block_out_channels"])
    assert vae.downscale == 4 and clip.text_encoder.config.num_hidden_layers == models.CLIP_CONFIG["num_hidden_layers"]
    assert summary["params"]["unet"] == sum(p.numel() for p in model.unet.parameters())


def test_ema_follows_diffusers_warmup_rule():
    from diffusers.training_utils import EMAModel

    param = torch.nn.Parameter(torch.zeros(1))
    ema = EMAModel([param], decay=0.999, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    for step in range(1, 101):
        param.data.fill_(float(step))
        ema.step([param])
    k = 100 - 1  # diffusers: step - update_after_step - 1
    assert ema.cur_decay_value == pytest.approx(min(0.999, 1 - (1 + k) ** -0.75))


def test_latent_rescale_is_exact_and_hits_the_sd1_scale():
    torch.manual_seed(0)
    _, vae, _ = models.build_models(0)
    vae.eval()
    images = train._to_tensor(dataset.make_batch(__import__("random").Random(0), 8, models.RESOLUTION)[0])
    with torch.no_grad():
        before = vae.decode(vae.encode(images).latent_dist.mean).sample
        gain = train.normalise_latents(vae, images)
        latents = vae.encode(images).latent_dist
        after = vae.decode(latents.mean).sample
    assert math.isfinite(gain) and gain > 0
    assert latents.mean.std().item() * models.SCALING_FACTOR == pytest.approx(1.0, rel=1e-4)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_lr_schedule_warms_up_then_decays_to_a_tenth():
    assert train._lr_factor(0, 1000) == pytest.approx(1 / 50)
    assert train._lr_factor(49, 1000) == pytest.approx(1.0)
    assert train._lr_factor(1000, 1000) == pytest.approx(0.1)
