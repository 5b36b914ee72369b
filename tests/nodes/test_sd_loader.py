"""Checkpoint loading: outputs pinned against diffusers/transformers modules with the same weights, the
key mapping against diffusers' own converters, shape-based architecture inference (tiny and full
SD1.5 size), bit-exact save/load, half -> fp32, refused pickles and clear errors for bad files."""
from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file
from sd_helpers import TINY_NAME, loaded, reference, sandbox_paths, tiny_checkpoint

from nodes.loader_nodes import CheckpointLoaderSimple, CheckpointSave, CLIPSetLastLayer, LoadCheckpoint, VAELoader
from nodes.sd import convert
from nodes.sd.arch import infer_architecture
from nodes.sd.loader import checkpoint_state_dict, load_checkpoint, load_vae
from nodes.sd.safetensors_io import PICKLE_ENV, CheckpointError, allow_pickle, target_dtype
from nodes.sd.tiny import sd15_meta_checkpoint, write_tiny_checkpoint

TOL = 1e-5


@pytest.fixture
def sd_paths(tmp_path):
    yield from sandbox_paths(tmp_path)


def test_tiny_checkpoint_is_small_deterministic_and_in_the_original_layout(tmp_path):
    a = write_tiny_checkpoint(tmp_path / "a.safetensors", seed=3)
    b = write_tiny_checkpoint(tmp_path / "b.safetensors", seed=3)
    c = write_tiny_checkpoint(tmp_path / "c.safetensors", seed=4)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert os.path.getsize(a) < 8 * 2**20
    keys = load_file(a).keys()
    for prefix in ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer.text_model."):
        assert any(k.startswith(prefix) for k in keys)
    assert "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight" in keys
    assert load_file(a)["first_stage_model.encoder.mid.attn_1.q.weight"].ndim == 4  # conv 1x1, as real files


def test_loaded_unet_vae_and_text_encoder_match_the_reference_modules():
    model, clip, vae = loaded()
    ref_unet, ref_vae, ref_clip = reference()
    gen = torch.Generator().manual_seed(1)
    x, ctx = torch.randn(2, 4, 8, 8, generator=gen), torch.randn(2, 77, 32, generator=gen)
    t = torch.tensor([999, 10])
    image = torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407] + [49407] * 70])
    with torch.no_grad():
        assert (model.unet(x, t, ctx).sample - ref_unet(x, t, ctx).sample).abs().max() <= TOL
        assert (vae.vae.decode(x[:1]).sample - ref_vae.decode(x[:1]).sample).abs().max() <= TOL
        ours = vae.vae.encode(image).latent_dist.mean
        assert (ours - ref_vae.encode(image).latent_dist.mean).abs().max() <= TOL
        a, b = clip.text_encoder(ids, output_hidden_states=True), ref_clip(ids, output_hidden_states=True)
        assert (a.last_hidden_state - b.last_hidden_state).abs().max() <= TOL
        assert (a.pooler_output - b.pooler_output).abs().max() <= TOL
    assert model.unet.dtype == vae.vae.dtype == clip.text_encoder.dtype == torch.float32  # fp16 file, CPU
    assert model.family == "sd1" and model.prediction_type == "epsilon" and model.latent_scale == 0.18215
    assert vae.downscale == 8 and vae.scaling_factor == 0.18215


def test_key_mapping_agrees_with_diffusers_converters():
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    ckpt = load_file(tiny_checkpoint())
    unet, vae, clip = convert.checkpoint_from_original(ckpt)
    theirs_unet = convert_ldm_unet_checkpoint(ckpt, {"layers_per_block": 1})
    theirs_vae = convert_ldm_vae_checkpoint(ckpt, {"layers_per_block": 1, "down_block_types": [0] * 4,
                                                   "up_block_types": [0] * 4})
    theirs_clip = {k.removeprefix("text_model."): v for k, v in convert_ldm_clip_checkpoint(ckpt).items()
                   if not k.endswith("position_ids")}
    for ours, theirs in ((unet, theirs_unet), (vae, theirs_vae), (clip, theirs_clip)):
        assert set(ours) == set(theirs)
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # ...and the reverse direction restores the file's keys and tensors exactly.
    back = convert.checkpoint_to_original(unet, vae, clip)
    assert set(back) == set(ckpt) and all(torch.equal(back[k], ckpt[k]) for k in ckpt)


def _meta_sd15() -> dict[str, tuple[int, ...]]:
    ckpt = sd15_meta_checkpoint()
    return {k: tuple(v.shape) for k, v in ckpt.items()}


def test_architecture_is_inferred_from_shapes_for_full_sd15_and_other_widths(tmp_path):
    arch = infer_architecture(_meta_sd15())
    assert arch.unet["block_out_channels"] == [320, 640, 1280, 1280]
    assert arch.unet["down_block_types"] == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    assert arch.unet["up_block_types"] == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
    assert (arch.unet["layers_per_block"], arch.unet["cross_attention_dim"]) == (2, 768)
    assert (arch.unet["in_channels"], arch.unet["out_channels"], arch.unet["use_linear_projection"]) == (4, 4, False)
    assert arch.vae["block_out_channels"] == [128, 256, 512, 512] and arch.vae["layers_per_block"] == 2
    assert (arch.clip["hidden_size"], arch.clip["num_hidden_layers"], arch.clip["num_attention_heads"]) == (768, 12, 12)
    assert (arch.clip["intermediate_size"], arch.clip["vocab_size"]) == (3072, 49408)
    # A three-level UNet and a three-layer CLIP: nothing about the tiny defaults is hard-coded.
    path = write_tiny_checkpoint(tmp_path / "wide.safetensors", unet_channels=(32, 64, 96), clip_layers=3)
    model, clip, _ = load_checkpoint(path, "cpu")
    assert list(model.unet.config.block_out_channels) == [32, 64, 96]
    assert clip.text_encoder.config.num_hidden_layers == 3


def test_checkpoint_save_then_load_is_bit_exact(sd_paths):
    model, clip, vae = CheckpointLoaderSimple().run(TINY_NAME)
    before = checkpoint_state_dict(model, clip, vae)
    CheckpointSave().run(model, clip, vae, "checkpoints/roundtrip", prompt={"1": {"class_type": "X"}},
                         extra_pnginfo={"workflow": {"nodes": []}})
    saved = sd_paths.output / "checkpoints" / "roundtrip_00001_.safetensors"
    with safe_open(str(saved), framework="pt") as f:
        assert f.metadata()["prompt"] == '{"1": {"class_type": "X"}}'
        assert f.metadata()["workflow"] == '{"nodes": []}'
    assert "roundtrip_00001_.safetensors" in sd_paths.get_filename_list("checkpoints")
    again = checkpoint_state_dict(*LoadCheckpoint().run("roundtrip_00001_.safetensors"))
    assert set(again) == set(before) and all(torch.equal(again[k], before[k]) for k in before)
    file = load_file(saved)
    assert set(file) == set(load_file(tiny_checkpoint()))  # the same original-layout keys as the source
    assert all(torch.equal(file[k], before[k]) for k in before)


def test_half_precision_policy():
    assert target_dtype(torch.float16, torch.device("cpu")) == torch.float32
    assert target_dtype(torch.bfloat16, torch.device("cpu")) == torch.float32
    assert target_dtype(torch.float16, torch.device("cuda")) == torch.float16  # stays half on a GPU
    assert target_dtype(torch.float32, torch.device("cuda")) == torch.float32
    assert target_dtype(torch.int64, torch.device("cpu")) == torch.int64


def test_half_precision_files_become_fp32_on_cpu():
    path = tiny_checkpoint(0, torch.bfloat16)
    model, clip, vae = load_checkpoint(path, "cpu")
    ref = reference(0, torch.bfloat16)[0]
    assert model.unet.dtype == torch.float32
    key = "conv_in.weight"
    assert torch.equal(model.unet.state_dict()[key], ref.state_dict()[key])


def test_clip_set_last_layer_clones_and_keeps_the_input():
    _, clip, _ = loaded()
    out = CLIPSetLastLayer().run(clip, -2)[0]
    assert out.layer_idx == -2 and clip.layer_idx == -1 and out.text_encoder is clip.text_encoder


def test_vae_loader_reads_original_and_diffusers_layout_files(sd_paths):
    ref_vae = reference()[1]
    vae_dir = sd_paths.base / "models" / "vae"
    vae_dir.mkdir(parents=True)
    sd = {k: v.contiguous() for k, v in ref_vae.state_dict().items()}
    save_file(convert.vae_to_original(sd, prefix=""), str(vae_dir / "orig.safetensors"))
    save_file(sd, str(vae_dir / "diffusers.safetensors"))
    x = torch.randn(1, 4, 4, 4)
    for name in ("orig.safetensors", "diffusers.safetensors"):
        vae = VAELoader().run(name)[0]
        with torch.no_grad():
            assert torch.equal(vae.vae.decode(x).sample, ref_vae.decode(x).sample)
    with pytest.raises(FileNotFoundError, match="models/vae"):
        VAELoader().run("missing.safetensors")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_checkpoints_are_refused_unless_opted_in(tmp_path, monkeypatch):
    monkeypatch.delenv(PICKLE_ENV, raising=False)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": load_file(tiny_checkpoint())}, path)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path, "cpu")
    allow_pickle(True)
    try:
        model, _, _ = load_checkpoint(path, "cpu")
        assert torch.equal(model.unet.state_dict()["conv_in.weight"], loaded()[0].unet.state_dict()["conv_in.weight"])
        evil = tmp_path / "evil.ckpt"
        evil.write_bytes(pickle.dumps(_Evil()))
        with pytest.raises(CheckpointError, match="weights-only"):  # opted in, still weights_only
            load_checkpoint(evil, "cpu")
    finally:
        allow_pickle(False)
    assert not (tmp_path / "pwned").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_bad_files_get_clear_errors(tmp_path):
    good = tiny_checkpoint().read_bytes()
    cases = {"truncated.safetensors": (good[: len(good) // 2], "truncated"),
             "header.safetensors": (good[:20], "truncated"),
             "noise.safetensors": (os.urandom(4096), "not a valid safetensors"),
             "empty.safetensors": (b"", "too short"),
             "picture.safetensors": (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a valid safetensors")}
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=message) as err:
            load_checkpoint(tmp_path / name, "cpu")
        assert name in str(err.value)


def _fake(tmp_path, name, shapes):
    path = tmp_path / name
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in shapes.items()}, str(path))
    return path


def test_other_families_are_named_in_the_error(tmp_path):
    attn = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    sd2 = _fake(tmp_path, "sd2.safetensors", {attn: (8, 1024), "cond_stage_model.model.token_embedding.weight": (4, 8),
                                              "first_stage_model.encoder.conv_in.weight": (4, 3, 3, 3)})
    sdxl = _fake(tmp_path, "sdxl.safetensors", {attn: (8, 2048), "conditioner.embedders.0.transformer.x": (2,)})
    unknown = _fake(tmp_path, "lora.safetensors", {"lora_unet_down.alpha": (1,)})
    with pytest.raises(CheckpointError, match=r"context_dim 1024 does not match the Stable Diffusion 2\.x text"):
        load_checkpoint(sd2, "cpu")
    with pytest.raises(CheckpointError, match="SDXL"):
        load_checkpoint(sdxl, "cpu")
    with pytest.raises(CheckpointError, match="not a Stable Diffusion 1.x checkpoint.*lora_unet_down"):
        load_checkpoint(unknown, "cpu")
    with pytest.raises(CheckpointError, match="not a VAE file"):
        load_vae(unknown, "cpu")


def test_checkpoint_combo_lists_the_folder_and_missing_names_fail_clearly(sd_paths):
    choices = CheckpointLoaderSimple.INPUT_TYPES()["required"]["ckpt_name"][0]
    assert choices == [TINY_NAME]
    first = CheckpointLoaderSimple.IS_CHANGED(TINY_NAME)
    path = sd_paths.base / "models" / "checkpoints" / TINY_NAME
    write_tiny_checkpoint(path, seed=1)  # rewritten under the same name: the loader must re-run
    assert CheckpointLoaderSimple.IS_CHANGED(TINY_NAME) != first
    with pytest.raises(FileNotFoundError, match="not found"):
        CheckpointLoaderSimple().run("nope.safetensors")
