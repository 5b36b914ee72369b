"""Stable Diffusion 2.x: the OpenCLIP-H text encoder layout, the SD2 configs and v-prediction detection.

SD2 files keep the text encoder in OpenCLIP's layout (`cond_stage_model.model.*`: `resblocks`, a fused
`in_proj` attention, `ln_final`, `text_projection`); it maps onto a transformers `CLIPTextModel` with
GELU activations (all 24 layers are kept; the penultimate one is the default, as in ComfyUI). The UNet
uses 64-channel heads and linear projections. Whether a file predicts v is not written in it: as in
ComfyUI, a `v_pred` key says so, else the spread of one attention norm's bias (large for the 768-v
models) decides; `ModelSamplingDiscrete` overrides it by hand.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .convert import KeyMappingError

OPENCLIP_PREFIX = "cond_stage_model.model."
SD2_HEAD_DIM = 64
SD2_PAD = 0  # OpenCLIP pads with token 0 ("!"), SD1's CLIP with the end token
V_PRED_STD = 0.09  # ComfyUI's threshold on the std of that norm bias

_LAYER = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
          "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
_TOP = {"token_embedding.weight": "embeddings.token_embedding.weight",
        "positional_embedding": "embeddings.position_embedding.weight",
        "ln_final.weight": "final_layer_norm.weight", "ln_final.bias": "final_layer_norm.bias"}
_IGNORED = ("text_projection", "logit_scale", "attn_mask")
_RESBLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)$")


def is_sd2(keys: Any) -> bool:
    return any(k.startswith(OPENCLIP_PREFIX) for k in keys)


def openclip_to_transformers(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """`cond_stage_model.model.*` (OpenCLIP text tower) -> flat CLIPTextModel keys; q/k/v split from in_proj."""
    out: dict[str, Any] = {}
    for key, value in ckpt.items():
        if not key.startswith(OPENCLIP_PREFIX):
            continue
        rest = key[len(OPENCLIP_PREFIX):]
        if rest in _TOP:
            out[_TOP[rest]] = value
        elif rest in _IGNORED or rest.startswith("visual."):
            continue
        elif m := _RESBLOCK.match(rest):
            layer, child = f"encoder.layers.{m.group(1)}", m.group(2)
            if child in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = child.rsplit("_", 1)[1]
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0), strict=True):
                    out[f"{layer}.self_attn.{name}.{kind}"] = part
                continue
            module, _, param = child.rpartition(".")
            if module not in _LAYER:
                raise KeyMappingError(f"OpenCLIP text encoder: unexpected key {key!r}")
            out[f"{layer}.{_LAYER[module]}.{param}"] = value
        else:
            raise KeyMappingError(f"OpenCLIP text encoder: unexpected key {key!r}")
    return out


def transformers_to_openclip(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Flat (or `text_model.`) CLIPTextModel keys -> `cond_stage_model.model.*` (CheckpointSave, tiny files)."""
    import torch

    flat = {(k[len("text_model."):] if k.startswith("text_model.") else k): v for k, v in sd.items()}
    top = {v: k for k, v in _TOP.items()}
    layer_names = {v: k for k, v in _LAYER.items()}
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key in top:
            out[OPENCLIP_PREFIX + top[key]] = value
            continue
        m = re.match(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$", key)
        if not m:
            if key.endswith("position_ids"):
                continue
            raise KeyMappingError(f"CLIP text encoder: unexpected key {key!r}")
        i, module, param = m.groups()
        base = f"{OPENCLIP_PREFIX}transformer.resblocks.{i}."
        if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            if module == "self_attn.q_proj":
                parts = [flat[f"encoder.layers.{i}.self_attn.{n}.{param}"] for n in ("q_proj", "k_proj", "v_proj")]
                out[f"{base}attn.in_proj_{param}"] = torch.cat(parts, dim=0)
            continue
        out[f"{base}{layer_names[module]}.{param}"] = value
    width = out[OPENCLIP_PREFIX + "token_embedding.weight"].shape[1]
    out.setdefault(OPENCLIP_PREFIX + "text_projection", torch.eye(width, dtype=out[OPENCLIP_PREFIX +
                                                                                    "token_embedding.weight"].dtype))
    return out


def openclip_shapes(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The CLIPTextModel-keyed shapes of an OpenCLIP text tower (for `clip_config`)."""
    out = {}
    for key, shape in shapes.items():
        rest = key[len(OPENCLIP_PREFIX):]
        if rest in _TOP:
            out[_TOP[rest]] = shape
        elif (m := _RESBLOCK.match(rest)) and m.group(2) == "mlp.c_fc.weight":
            out[f"encoder.layers.{m.group(1)}.mlp.fc1.weight"] = shape
    return out


def sd2_clip_config(base: dict[str, Any]) -> dict[str, Any]:
    """OpenCLIP-H's text tower differs from OpenAI's CLIP-L in activation and head size only."""
    return dict(base, hidden_act="gelu", num_attention_heads=max(1, base["hidden_size"] // SD2_HEAD_DIM),
                pad_token_id=SD2_PAD)


def sd2_unet_config(base: dict[str, Any]) -> dict[str, Any]:
    """SD2's UNet: 64-channel heads at every level (diffusers' `attention_head_dim` holds head counts)."""
    heads = [max(1, c // SD2_HEAD_DIM) for c in base["block_out_channels"]]
    return dict(base, attention_head_dim=heads)


def v_prediction_key(unet_keys: Any) -> str | None:
    """The norm bias ComfyUI inspects (`output_blocks.11...` in full-size files; the last attention block here)."""
    rx = re.compile(r"output_blocks\.(\d+)\.1\.transformer_blocks\.0\.norm1\.bias$")
    found = sorted((int(m.group(1)), k) for k in unet_keys if (m := rx.search(k)))
    return found[-1][1] if found else None


def detect_prediction(ckpt: Mapping[str, Any], unet_prefix: str) -> str:
    """"v_prediction" or "epsilon" for an SD2 file (inpainting SD2 models are epsilon)."""
    import torch

    if "v_pred" in ckpt:
        return "v_prediction"
    conv_in = ckpt.get(unet_prefix + "input_blocks.0.0.weight")
    if conv_in is not None and conv_in.shape[1] != 4:
        return "epsilon"
    key = v_prediction_key([k for k in ckpt if k.startswith(unet_prefix)])
    if key is not None and torch.std(ckpt[key].float(), unbiased=False) > V_PRED_STD:
        return "v_prediction"
    return "epsilon"
