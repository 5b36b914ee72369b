"""LoRA nodes: merged weights equal W + s·(alpha/r)·up@down (computed here independently) for kohya
(diffusers- and LDM-named, LoCon 1x1/3x3 and Tucker convs), diffusers/PEFT and old diffusers files; they
agree with diffusers' load_lora_adapter/fuse_lora and PEFT to 1e-5; inputs stay unchanged; strength 0 is
identity; stacked LoRAs add; unknown keys are warned; bad files fail clearly; lora_multiple runs."""
from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from sd_helpers import TINY_NAME, loaded, reference, same_state, sandbox_paths, state_fingerprint, work_dir

from nodes.lora_nodes import LoraLoader, LoraLoaderModelOnly
from nodes.sd.lora import LoraError, clip_lora_names, load_lora_for_models, unet_lora_names

RANK = 4
# diffusers module -> original-LDM module of the tiny UNet (2 levels, 1 layer per block), written out by
# hand from the LDM layout rather than with nodes/sd/convert.py, so the mapping is checked independently.
LDM_NAMES = {
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q": "input_blocks.1.1.transformer_blocks.0.attn1.to_q",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0":
        "input_blocks.1.1.transformer_blocks.0.attn2.to_out.0",
    "down_blocks.0.attentions.0.proj_in": "input_blocks.1.1.proj_in",                      # 1x1 conv
    "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj": "middle_block.1.transformer_blocks.0.ff.net.0.proj",
    "up_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k": "output_blocks.3.1.transformer_blocks.0.attn2.to_k",
    "down_blocks.0.resnets.0.conv1": "input_blocks.1.0.in_layers.2",                     # 3x3 LoCon
    "down_blocks.0.downsamplers.0.conv": "input_blocks.2.0.op",
    "up_blocks.0.upsamplers.0.conv": "output_blocks.1.1.conv",
    "up_blocks.1.resnets.1.conv_shortcut": "output_blocks.3.0.skip_connection",          # 1x1 conv
    "mid_block.resnets.1.time_emb_proj": "middle_block.2.emb_layers.1",
    "time_embedding.linear_1": "time_embed.0",
}
TE_MODULES = ("encoder.layers.0.self_attn.q_proj", "encoder.layers.1.self_attn.out_proj", "encoder.layers.1.mlp.fc1")


@pytest.fixture
def sd_paths(tmp_path):
    yield from sandbox_paths(tmp_path)


# ------------------------------------------------------------------------------------------ helpers
def factors(module: torch.nn.Module, names, seed: int, alpha: float | None = 2.0, tucker: tuple = ()) -> dict:
    """{module name: (up, down, mid, alpha)} random rank-4 factors shaped for each weight (conv: LoCon)."""
    gen, state, out = torch.Generator().manual_seed(seed), module.state_dict(), {}
    for name in names:
        w = state[name + ".weight"]
        if w.ndim == 4 and name in tucker:  # Tucker LoCon: 1x1 up/down around a k x k core
            up, down = torch.randn(w.shape[0], RANK, 1, 1, generator=gen), torch.randn(RANK, w.shape[1], 1, 1, generator=gen)
            mid = torch.randn(RANK, RANK, *w.shape[2:], generator=gen)
        elif w.ndim == 4:
            up, down, mid = torch.randn(w.shape[0], RANK, 1, 1, generator=gen), torch.randn(RANK, *w.shape[1:], generator=gen), None
        else:
            up, down, mid = torch.randn(w.shape[0], RANK, generator=gen), torch.randn(RANK, w.shape[1], generator=gen), None
        out[name] = (up * 0.05, down * 0.05, None if mid is None else mid * 0.5, alpha)
    return out


def expected_delta(up, down, mid, alpha, shape) -> torch.Tensor:
    """(alpha/r)·up@down by the textbook route: per-tap matrix products for convs."""
    scale = (alpha if alpha is not None else RANK) / RANK
    u = up.reshape(up.shape[0], RANK)
    if mid is not None:  # core taps: delta[:, :, h, w] = up @ mid[:, :, h, w] @ down
        d = down.reshape(RANK, -1)
        taps = [[u @ mid[:, :, h, w] @ d for w in range(mid.shape[3])] for h in range(mid.shape[2])]
        return scale * torch.stack([torch.stack(row, -1) for row in taps], -2)
    if len(shape) == 4:
        return scale * torch.einsum("or,rihw->oihw", u, down.reshape(RANK, shape[1], *shape[2:]))
    return scale * (u @ down.reshape(RANK, -1))


def kohya_dict(blocks: dict, prefix: str, rename=lambda n: n) -> dict:
    """kohya keys: <prefix><module with _>.lora_up/lora_down[/lora_mid].weight and .alpha."""
    sd = {}
    for name, (up, down, mid, alpha) in blocks.items():
        key = prefix + rename(name).replace(".", "_")
        sd[key + ".lora_up.weight"], sd[key + ".lora_down.weight"] = up, down
        if mid is not None:
            sd[key + ".lora_mid.weight"] = mid
        if alpha is not None:
            sd[key + ".alpha"] = torch.tensor(alpha)
    return sd


def te_kohya(blocks: dict) -> dict:
    return kohya_dict(blocks, "lora_te_", lambda n: "text_model." + n)


def peft_file(path: Path, unet_blocks: dict, te_blocks: dict, metadata: dict | None = None) -> Path:
    """diffusers/PEFT keys: unet.<module>.lora_A/B.weight, text_encoder.text_model.<module>...; config as metadata."""
    sd = {}
    for prefix, blocks in (("unet.", unet_blocks), ("text_encoder.text_model.", te_blocks)):
        for name, (up, down, _mid, _alpha) in blocks.items():
            sd[f"{prefix}{name}.lora_A.weight"], sd[f"{prefix}{name}.lora_B.weight"] = down, up
    meta = {"lora_adapter_metadata": json.dumps(metadata)} if metadata else None
    return _save(path, sd, meta)


def _save(path: Path, sd: dict, metadata=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)
    return path


def _unet_out(unet, context) -> torch.Tensor:
    with torch.no_grad():
        return unet(torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)), 10, context).sample


def _context() -> torch.Tensor:
    return torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(6))


def check_merge(result: torch.nn.Module, source: torch.nn.Module, blocks: dict, strength: float) -> None:
    """Patched weights equal the formula; every other tensor is the source's own storage."""
    new, old = result.state_dict(), source.state_dict()
    patched = {name + ".weight" for name in blocks}
    for key, value in new.items():
        if key in patched:
            up, down, mid, alpha = blocks[key[: -len(".weight")]]
            want = old[key] + strength * expected_delta(up, down, mid, alpha, old[key].shape)
            assert torch.allclose(value, want, atol=1e-6, rtol=0), key
            assert not torch.equal(value, old[key]), key
        else:
            assert value.data_ptr() == old[key].data_ptr(), key  # shared, not copied


# -------------------------------------------------------------------------------------------- tests
def test_kohya_file_merges_by_the_formula_and_leaves_inputs_unchanged():
    model, clip, _vae = loaded()
    unet_blocks = factors(model.unet, LDM_NAMES, seed=1, tucker=("down_blocks.0.downsamplers.0.conv",))
    te_blocks = factors(clip.text_encoder, TE_MODULES, seed=2, alpha=None)  # no alpha: scale 1
    path = _save(work_dir() / "lora" / "kohya.safetensors", {**kohya_dict(unet_blocks, "lora_unet_"), **te_kohya(te_blocks)})
    before = state_fingerprint(model.unet), state_fingerprint(clip.text_encoder)
    tagged = model.with_option("marker", 1)
    new_model, new_clip, report = load_lora_for_models(tagged, clip, path, 0.8, -1.5)
    check_merge(new_model.unet, model.unet, unet_blocks, 0.8)
    check_merge(new_clip.text_encoder, clip.text_encoder, te_blocks, -1.5)
    assert same_state(model.unet, before[0]) and same_state(clip.text_encoder, before[1])
    assert new_model.unet is not model.unet and new_model.options == {"marker": 1} and not new_model.unet.training
    assert new_clip.tokenizer is clip.tokenizer and report.not_loaded == []
    assert torch.isfinite(_unet_out(new_model.unet, _context())).all()


def test_ldm_named_kohya_keys_equal_diffusers_named_ones():
    model = loaded()[0]
    blocks = factors(model.unet, LDM_NAMES, seed=3)
    folder = work_dir() / "lora"
    by_diffusers = _save(folder / "d.safetensors", kohya_dict(blocks, "lora_unet_"))
    by_ldm = _save(folder / "l.safetensors", kohya_dict(blocks, "lora_unet_", LDM_NAMES.__getitem__))
    a, _, report_a = load_lora_for_models(model, None, by_diffusers, 1.0, 0.0)
    b, _, report_b = load_lora_for_models(model, None, by_ldm, 1.0, 0.0)
    assert sorted(report_a.patched["unet"]) == sorted(report_b.patched["unet"]) == sorted(n + ".weight" for n in blocks)
    assert all(torch.equal(v, b.unet.state_dict()[k]) for k, v in a.unet.state_dict().items())


@pytest.mark.parametrize("style", ["diffusers", "ldm"])
def test_kohya_file_matches_diffusers_conversion_and_fuse(style):
    """diffusers' own kohya path (lora_state_dict -> load_lora_adapter -> fuse_lora) gives our weights."""
    pytest.importorskip("peft")
    from diffusers.loaders.lora_pipeline import StableDiffusionLoraLoaderMixin

    unet_ref, model = reference()[0], loaded()[0]
    # diffusers maps an LDM-named upsampler of an attention-less up block to a non-existent attentions.1.conv.
    names = [n for n in LDM_NAMES if not (style == "ldm" and "upsamplers" in n)]
    blocks = factors(model.unet, names, seed=4, alpha=8.0)
    rename = LDM_NAMES.__getitem__ if style == "ldm" else (lambda n: n)
    path = _save(work_dir() / "lora" / f"kohya-{style}.safetensors", kohya_dict(blocks, "lora_unet_", rename))
    state, alphas = StableDiffusionLoraLoaderMixin.lora_state_dict(str(path), unet_config=unet_ref.config)
    theirs = copy.deepcopy(unet_ref)
    theirs.load_lora_adapter(state, prefix="unet", network_alphas=alphas, adapter_name="k")
    context = _context()
    unfused = _unet_out(theirs, context)
    theirs.fuse_lora(lora_scale=0.6)
    ours = load_lora_for_models(model, None, path, 0.6, 0.0)[0].unet
    fused = {k.replace(".base_layer", ""): v for k, v in theirs.state_dict().items() if ".lora_" not in k}
    assert max((fused[k] - v).abs().max().item() for k, v in ours.state_dict().items()) < 1e-6
    full = load_lora_for_models(model, None, path, 1.0, 0.0)[0].unet
    assert torch.allclose(_unet_out(full, context), unfused, atol=1e-5, rtol=0)


def test_peft_file_matches_diffusers_load_lora_adapter_and_peft_text_encoder():
    pytest.importorskip("peft")
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

    (unet_ref, _vae, clip_ref), (model, clip, _v) = reference(), loaded()
    unet_blocks = factors(model.unet, list(LDM_NAMES), seed=7)
    te_blocks = factors(clip.text_encoder, TE_MODULES, seed=8)
    meta = {"unet.r": RANK, "unet.lora_alpha": 8, "unet.target_modules": list(unet_blocks),
            "unet.alpha_pattern": {"down_blocks.0.resnets.0.conv1": 2},
            "text_encoder.r": RANK, "text_encoder.lora_alpha": 2, "text_encoder.target_modules": list(TE_MODULES)}
    path = peft_file(work_dir() / "lora" / "peft" / "pytorch_lora_weights.safetensors", unet_blocks, te_blocks, meta)
    theirs = copy.deepcopy(unet_ref)
    theirs.load_lora_adapter(str(path.parent), weight_name=path.name, prefix="unet", adapter_name="p")
    context = _context()
    new_model, new_clip, report = load_lora_for_models(model, clip, path, 1.0, 1.0)
    assert report.not_loaded == [] and len(report.patched["unet"]) == len(unet_blocks)
    assert torch.allclose(_unet_out(new_model.unet, context), _unet_out(theirs, context), atol=1e-5, rtol=0)
    assert (_unet_out(new_model.unet, context) - _unet_out(model.unet, context)).abs().max() > 1e-3
    # The text encoder against PEFT itself (diffusers' pipeline loader expects pre-5.6 transformers keys).
    te = copy.deepcopy(clip_ref)
    inject_adapter_in_model(LoraConfig(r=RANK, lora_alpha=2, target_modules=list(TE_MODULES)), te)
    set_peft_model_state_dict(te, {f"{n}.lora_{ab}.weight": t for n, (up, down, _m, _a) in te_blocks.items()
                                   for ab, t in (("A", down), ("B", up))})
    ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407]])
    with torch.no_grad():
        want, got = te(ids).last_hidden_state, new_clip.text_encoder(ids).last_hidden_state
    assert torch.allclose(got, want, atol=1e-5, rtol=0)
    check_merge(new_clip.text_encoder, clip.text_encoder, {n: (*b[:3], 2.0) for n, b in te_blocks.items()}, 1.0)


def test_old_diffusers_layouts_are_read():
    model, clip, _vae = loaded()
    blocks = factors(model.unet, ["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0",
                                  "down_blocks.0.resnets.0.conv1"], seed=9, alpha=None)
    te = factors(clip.text_encoder, ["encoder.layers.0.self_attn.k_proj", "encoder.layers.0.mlp.fc2"], seed=10, alpha=None)
    (attn_up, attn_down, _, _), (conv_up, conv_down, _, _) = blocks.values()
    (k_up, k_down, _, _), (fc_up, fc_down, _, _) = te.values()
    sd = {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight": attn_up,
          "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight": attn_down,
          "unet.down_blocks.0.resnets.0.conv1.lora.up.weight": conv_up,
          "unet.down_blocks.0.resnets.0.conv1.lora.down.weight": conv_down,
          "text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.up.weight": k_up,
          "text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.down.weight": k_down,
          "text_encoder.text_model.encoder.layers.0.mlp.fc2.lora_linear_layer.up.weight": fc_up,
          "text_encoder.text_model.encoder.layers.0.mlp.fc2.lora_linear_layer.down.weight": fc_down}
    path = _save(work_dir() / "lora" / "old.safetensors", sd)
    new_model, new_clip, report = load_lora_for_models(model, clip, path, 1.0, 1.0)
    assert report.not_loaded == []
    check_merge(new_model.unet, model.unet, blocks, 1.0)
    check_merge(new_clip.text_encoder, clip.text_encoder, te, 1.0)


def test_full_size_sd1_names_resolve():
    """Names real SD1.5 LoRAs use map to the right weights of a full-size (meta-device) SD1 UNet/CLIP-L."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        unet, te = UNet2DConditionModel(cross_attention_dim=768), CLIPTextModel(CLIPTextConfig())
    names, te_names = unet_lora_names(unet), clip_lora_names(te)
    pairs = {"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": "down_blocks.1.attentions.0",
             "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k": "down_blocks.1.attentions.0",
             "lora_unet_output_blocks_11_1_transformer_blocks_0_ff_net_2": "up_blocks.3.attentions.2",
             "lora_unet_output_blocks_5_2_conv": "up_blocks.1.upsamplers.0",
             "lora_unet_output_blocks_2_1_conv": "up_blocks.0.upsamplers.0",
             "lora_unet_input_blocks_9_0_op": "down_blocks.2.downsamplers.0",
             "lora_unet_middle_block_1_proj_out": "mid_block.attentions.0.proj_out"}
    for alias, start in pairs.items():
        assert names[alias].startswith(start), (alias, names[alias])
    assert te_names["lora_te_text_model_encoder_layers_11_mlp_fc2"] == "encoder.layers.11.mlp.fc2.weight"
    assert te_names["text_encoder.text_model.encoder.layers.3.self_attn.q_proj"] == "encoder.layers.3.self_attn.q_proj.weight"
    # 16 transformers x 12 modules (proj_in/out, 2 x q/k/v/out, 2 ff) and 12 x 6 CLIP modules: the 192 + 72
    # blocks of kohya's default SD1 LoRA.
    attn = {k for k in names if k.startswith("lora_unet_") and ("transformer_blocks" in k or "proj_" in k)}
    assert len({names[k] for k in attn}) == 16 * 12 and len(set(te_names.values())) == 12 * 6


def test_half_precision_weights_stay_half_and_are_merged_in_fp32():
    """fp16 weights (a GPU model) get W + s·Δ computed in fp32 and rounded once."""
    from dataclasses import replace

    from nodes.sd.loader import module_like

    model = loaded()[0]
    half = replace(model, unet=module_like(model.unet, {k: v.half() for k, v in model.unet.state_dict().items()}))
    blocks = factors(model.unet, ["down_blocks.0.resnets.0.conv1", "mid_block.attentions.0.proj_out"], seed=16)
    path = _save(work_dir() / "lora" / "half.safetensors", {k: v.half() for k, v in kohya_dict(blocks, "lora_unet_").items()})
    merged = load_lora_for_models(half, None, path, 1.0, 0.0)[0].unet.state_dict()
    for name, (up, down, mid, alpha) in blocks.items():
        w = half.unet.state_dict()[name + ".weight"]
        rounded = [t.half().float() for t in (up, down)]  # the file holds fp16 factors
        want = (w.float() + expected_delta(*rounded, mid, alpha, w.shape)).half()
        assert merged[name + ".weight"].dtype == torch.float16
        got = merged[name + ".weight"].float()
        assert torch.allclose(got, want.float(), rtol=1e-3, atol=1e-7) and not torch.equal(got, w.float()), name


def test_strength_zero_is_identity_and_strength_scales(sd_paths):
    model, clip, _vae = loaded()
    blocks = factors(model.unet, ["mid_block.attentions.0.transformer_blocks.0.attn1.to_v"], seed=11)
    te = factors(clip.text_encoder, TE_MODULES[:1], seed=12)
    _save(sd_paths.models["loras"][0] / "z.safetensors", {**kohya_dict(blocks, "lora_unet_"), **te_kohya(te)})
    assert LoraLoader().run(model, clip, "z.safetensors", 0.0, 0.0) == (model, clip)
    assert LoraLoaderModelOnly().run(model, "z.safetensors", 0.0) == (model,)
    only_clip = LoraLoader().run(model, clip, "z.safetensors", 0.0, 1.0)
    assert only_clip[0] is model and only_clip[1].text_encoder is not clip.text_encoder
    only_model = LoraLoader().run(model, clip, "z.safetensors", 2.0, 0.0)
    assert only_model[1] is clip
    check_merge(only_model[0].unet, model.unet, blocks, 2.0)
    (model_only,) = LoraLoaderModelOnly().run(model, "z.safetensors", -0.5)
    check_merge(model_only.unet, model.unet, blocks, -0.5)


def test_stacked_loras_add(sd_paths):
    model, clip, _vae = loaded()
    shared = "up_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q"
    first = factors(model.unet, [shared, "down_blocks.0.resnets.0.conv2"], seed=13)
    second = factors(model.unet, [shared, "up_blocks.1.resnets.0.conv1"], seed=14, alpha=1.0)
    loras = sd_paths.models["loras"][0]
    _save(loras / "a.safetensors", kohya_dict(first, "lora_unet_"))
    peft = {k: (*v[:3], None) for k, v in second.items()}  # PEFT without metadata: alpha = rank
    peft_file(loras / "sub" / "b.safetensors", peft, {})
    m1, c1 = LoraLoader().run(model, clip, "a.safetensors", 1.0, 1.0)
    first_result = state_fingerprint(m1.unet)
    m2, c2 = LoraLoader().run(m1, c1, "sub/b.safetensors", 0.5, 1.0)
    assert c2 is clip  # neither file touches the text encoder
    base, out = model.unet.state_dict(), m2.unet.state_dict()
    for key in {n + ".weight" for n in [*first, *second]}:
        want = base[key].clone()
        for blocks, strength in ((first, 1.0), (peft, 0.5)):
            if key[:-7] in blocks:
                want += strength * expected_delta(*blocks[key[:-7]], base[key].shape)
        assert torch.allclose(out[key], want, atol=1e-6, rtol=0), key
    assert same_state(m1.unet, first_result)  # the first loader's output is an input too: unchanged


def test_unknown_keys_are_warned_and_the_rest_applies(sd_paths, caplog):
    model, clip, _vae = loaded()
    blocks = factors(model.unet, ["down_blocks.0.attentions.0.proj_out"], seed=15)
    sd = kohya_dict(blocks, "lora_unet_")
    stray = {"lora_unet_down_blocks_7_attentions_0_proj_out": (8, 8), "lora_te2_text_model_encoder_layers_0_mlp_fc1": (8, 8),
             "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (640, 640)}  # wrong shape
    for name, (o, i) in stray.items():
        sd[name + ".lora_up.weight"], sd[name + ".lora_down.weight"] = torch.zeros(o, RANK), torch.zeros(RANK, i)
    sd["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"] = torch.zeros(64, RANK)  # down missing
    sd["bundle_emb.cat.string_to_param.*"] = torch.zeros(1, 32)
    dora = "lora_unet_mid_block_attentions_0_proj_in"  # DoRA: refused rather than applied without its magnitude
    sd.update({f"{dora}.lora_up.weight": torch.ones(32, RANK), f"{dora}.lora_down.weight": torch.ones(RANK, 32),
               f"{dora}.dora_scale": torch.ones(32, 1)})
    _save(sd_paths.models["loras"][0] / "u.safetensors", sd)
    with caplog.at_level(logging.WARNING, logger="nodes.sd.lora"):
        new_model, new_clip = LoraLoader().run(model, clip, "u.safetensors", 1.0, 1.0)
    check_merge(new_model.unet, model.unet, blocks, 1.0)
    assert new_clip is clip
    text = caplog.text
    for key in ("lora_unet_down_blocks_7_attentions_0_proj_out.lora_up.weight",
                "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
                "lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", "bundle_emb.cat.string_to_param.*"):
        assert f"lora key not loaded: {key}" in text
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q" in text and "do not fit" in text
    assert "DoRA is not supported" in text and f"lora key not loaded: {dora}.dora_scale" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nodes.sd.lora"):
        LoraLoaderModelOnly().run(model, "u.safetensors", 1.0)
    assert "lora_te" not in caplog.text and "down_blocks_7" in caplog.text  # text-encoder keys: no CLIP given


def test_files_that_are_not_loras_fail_clearly(sd_paths):
    from nodes.sd.safetensors_io import allow_pickle
    from nodes.sd.tiny import write_tiny_checkpoint

    model, clip, _vae = loaded()
    loras = sd_paths.models["loras"][0]
    write_tiny_checkpoint(loras / "ckpt.safetensors")
    with pytest.raises(LoraError, match=r"ckpt\.safetensors: not a LoRA file.*full checkpoint"):
        LoraLoader().run(model, clip, "ckpt.safetensors", 1.0, 1.0)
    _save(loras / "loha.safetensors", {"lora_unet_x.hada_w1_a": torch.zeros(2, 2), "lora_unet_x.hada_w1_b": torch.zeros(2, 2)})
    with pytest.raises(LoraError, match="LoHa"):
        LoraLoaderModelOnly().run(model, "loha.safetensors", 1.0)
    (loras / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(LoraError, match=r"junk\.safetensors: not a valid safetensors file"):
        LoraLoader().run(model, clip, "junk.safetensors", 1.0, 1.0)
    torch.save({"lora_unet_a.lora_up.weight": torch.zeros(1, 1)}, loras / "old.pt")
    previous = allow_pickle()
    try:
        allow_pickle(False)
        with pytest.raises(LoraError, match="pickle"):
            LoraLoader().run(model, clip, "old.pt", 1.0, 1.0)
    finally:
        allow_pickle(previous)
    with pytest.raises(FileNotFoundError, match="loras"):
        LoraLoader().run(model, clip, "missing.safetensors", 1.0, 1.0)


def test_node_schemas_match_comfyui():
    import nodes

    spec = LoraLoader.INPUT_TYPES()["required"]
    assert list(spec) == ["model", "clip", "lora_name", "strength_model", "strength_clip"]
    for name in ("strength_model", "strength_clip"):
        assert spec[name][0] == "FLOAT"
        assert {k: spec[name][1][k] for k in ("default", "min", "max", "step")} == \
            {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}
    assert LoraLoader.RETURN_TYPES == ("MODEL", "CLIP") and LoraLoader.CATEGORY == "loaders"
    assert list(LoraLoaderModelOnly.INPUT_TYPES()["required"]) == ["model", "lora_name", "strength_model"]
    assert LoraLoaderModelOnly.RETURN_TYPES == ("MODEL",)
    assert nodes.LoraLoader is LoraLoader and nodes.NODE_CLASS_MAPPINGS["LoraLoaderModelOnly"] is LoraLoaderModelOnly


WORKFLOW = Path(__file__).resolve().parents[3] / "shared" / "workflows-comfyui" / "lora_multiple.api.json"


@pytest.mark.skipif(not WORKFLOW.is_file(), reason="shared ComfyUI workflows not present")
def test_lora_multiple_workflow_runs_through_the_executor(sd_paths):
    from engine import NodeRegistry
    from engine.events import ListSink
    from engine.executor import Executor
    from engine.plugins import load_builtin
    from engine.workflow import validate_prompt

    model, clip, _vae = loaded()
    loras = sd_paths.models["loras"][0]
    _save(loras / "epiNoiseoffset_v2.safetensors",
          kohya_dict(factors(model.unet, LDM_NAMES, seed=20), "lora_unet_", LDM_NAMES.__getitem__))
    peft_file(loras / "theovercomer8sContrastFix_sd15.safetensors",
              factors(model.unet, list(LDM_NAMES)[:4], seed=21), factors(clip.text_encoder, TE_MODULES, seed=22))
    prompt = json.loads(WORKFLOW.read_text())
    prompt["4"]["inputs"]["ckpt_name"] = TINY_NAME
    registry = NodeRegistry()
    load_builtin(registry)
    assert validate_prompt(prompt, registry).ok  # the file as shipped (512 px, 20 steps), names aside
    prompt["3"]["inputs"]["steps"] = 2  # keep the run itself small
    prompt["5"]["inputs"].update(width=64, height=64)
    executor = Executor(registry)
    result = executor.run(prompt, run_id="lora1")
    assert result.status == "success", result.failures
    (image,) = result.outputs["9"]["images"]
    with_lora = (sd_paths.output / image["filename"]).read_bytes()
    # Off: both loaders pass their inputs through, so the picture changes; only they and downstream re-run.
    for nid in ("10", "11"):
        prompt[nid]["inputs"].update(strength_model=0.0, strength_clip=0.0)
    sink = ListSink()
    again = executor.run(prompt, run_id="lora2", sink=sink)
    assert again.status == "success", again.failures
    ran = {e.node for e in sink.events if type(e).__name__ == "Executing" and e.node}
    assert {"10", "11", "3"} <= ran and "4" not in ran and "5" not in ran
    without = (sd_paths.output / again.outputs["9"]["images"][0]["filename"]).read_bytes()
    assert without != with_lora
