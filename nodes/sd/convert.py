"""Key mapping between the original Stable Diffusion single-file layout and diffusers/transformers.

Each direction is a pure function over state dicts (tensors are shared, never copied, except the
VAE attention weights, which are reshaped views). The `*_to_original` functions return keys with the
checkpoint prefixes (`model.diffusion_model.`, `first_stage_model.`, `cond_stage_model.transformer.`);
the `*_from_original` functions accept a whole checkpoint and pick their component's keys.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."
CLIP_TEXT_PREFIX = CLIP_PREFIX + "text_model."

# diffusers ResnetBlock2D child -> original ResBlock child (UNet only; the VAE keeps diffusers' names
# except conv_shortcut).
_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


class KeyMappingError(ValueError):
    """A state dict holds keys that do not belong to the expected architecture."""


def _component(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Keys under `prefix` with it removed; a dict without that prefix is returned as-is."""
    picked = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return picked if picked else dict(sd)


def _indices(keys: Any, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def _map_keys(sd: Mapping[str, Any], pairs: list[tuple[str, str, dict[str, str]]], what: str) -> dict[str, Any]:
    """Rename keys by the longest matching prefix; `pairs` are (from_prefix, to_prefix, child renames)."""
    ordered = sorted(pairs, key=lambda p: len(p[0]), reverse=True)
    out: dict[str, Any] = {}
    for key, value in sd.items():
        for src, dst, children in ordered:
            if key == src or key.startswith(src + "."):
                rest = key[len(src) + 1:]
                for child_src, child_dst in children.items():
                    if rest.startswith(child_src + "."):
                        rest = child_dst + rest[len(child_src):]
                        break
                out[f"{dst}.{rest}" if rest else dst] = value
                break
        else:
            raise KeyMappingError(f"{what}: unexpected key {key!r}")
    return out


def _invert(pairs: list[tuple[str, str, dict[str, str]]]) -> list[tuple[str, str, dict[str, str]]]:
    return [(dst, src, {v: k for k, v in children.items()}) for src, dst, children in pairs]


# ---------------------------------------------------------------------------------------------- UNet
def unet_key_pairs(levels: int, layers: int, up_attention: set[int] | None = None) -> list[tuple[str, str, dict]]:
    """(diffusers prefix, original prefix, child renames) for an SD-style UNet.

    `levels` is len(block_out_channels), `layers` is layers_per_block; `up_attention` holds the
    diffusers up-block indices with cross-attention (it decides where the upsampler sits: `.2` after
    an attention block, `.1` otherwise). With `up_attention=None` both positions map back.
    """
    pairs: list[tuple[str, str, dict]] = [
        ("time_embedding.linear_1", "time_embed.0", {}), ("time_embedding.linear_2", "time_embed.2", {}),
        ("conv_in", "input_blocks.0.0", {}), ("conv_norm_out", "out.0", {}), ("conv_out", "out.2", {}),
        ("mid_block.resnets.0", "middle_block.0", _UNET_RESNET), ("mid_block.attentions.0", "middle_block.1", {}),
        ("mid_block.resnets.1", "middle_block.2", _UNET_RESNET)]
    step = layers + 1
    for i in range(levels):
        for j in range(layers):
            pairs.append((f"down_blocks.{i}.resnets.{j}", f"input_blocks.{step * i + j + 1}.0", _UNET_RESNET))
            pairs.append((f"down_blocks.{i}.attentions.{j}", f"input_blocks.{step * i + j + 1}.1", {}))
        if i < levels - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv", f"input_blocks.{step * (i + 1)}.0.op", {}))
        for j in range(step):
            pairs.append((f"up_blocks.{i}.resnets.{j}", f"output_blocks.{step * i + j}.0", _UNET_RESNET))
            pairs.append((f"up_blocks.{i}.attentions.{j}", f"output_blocks.{step * i + j}.1", {}))
        if i < levels - 1:
            last = step * i + layers
            slots = (1, 2) if up_attention is None else ((2,) if i in up_attention else (1,))
            for slot in slots:
                pairs.append((f"up_blocks.{i}.upsamplers.0.conv", f"output_blocks.{last}.{slot}.conv", {}))
    return pairs


def unet_to_original(sd: Mapping[str, Any]) -> dict[str, Any]:
    """diffusers UNet2DConditionModel state dict -> `model.diffusion_model.*` keys."""
    levels = len(_indices(sd, r"down_blocks\.(\d+)\."))
    layers = len(_indices(sd, r"down_blocks\.0\.resnets\.(\d+)\."))
    up_attn = set(_indices(sd, r"up_blocks\.(\d+)\.attentions\."))
    mapped = _map_keys(sd, unet_key_pairs(levels, layers, up_attn), "UNet (diffusers layout)")
    return {UNET_PREFIX + k: v for k, v in mapped.items()}


def unet_from_original(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """`model.diffusion_model.*` keys (or the same keys without the prefix) -> diffusers UNet keys."""
    sd = _component(ckpt, UNET_PREFIX)
    downs = _indices(sd, r"input_blocks\.(\d+)\.0\.op\.")
    levels = len(downs) + 1
    count = len(_indices(sd, r"input_blocks\.(\d+)\."))
    layers = (count - 1 - len(downs)) // levels
    pairs = [(b, a, {v: k for k, v in c.items()}) for a, b, c in unet_key_pairs(levels, layers)]
    return _map_keys(sd, pairs, "UNet (original layout)")


# ----------------------------------------------------------------------------------------------- VAE
def vae_key_pairs(levels: int, layers: int) -> list[tuple[str, str, dict]]:
    """(diffusers prefix, original prefix, child renames) for an AutoencoderKL with `levels` blocks."""
    pairs: list[tuple[str, str, dict]] = [("quant_conv", "quant_conv", {}),
                                          ("post_quant_conv", "post_quant_conv", {})]
    for part in ("encoder", "decoder"):
        pairs += [(f"{part}.conv_in", f"{part}.conv_in", {}), (f"{part}.conv_out", f"{part}.conv_out", {}),
                  (f"{part}.conv_norm_out", f"{part}.norm_out", {}),
                  (f"{part}.mid_block.resnets.0", f"{part}.mid.block_1", _VAE_RESNET),
                  (f"{part}.mid_block.resnets.1", f"{part}.mid.block_2", _VAE_RESNET),
                  (f"{part}.mid_block.attentions.0", f"{part}.mid.attn_1", _VAE_ATTN)]
    for i in range(levels):
        for j in range(layers):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}", f"encoder.down.{i}.block.{j}", _VAE_RESNET))
        up = levels - 1 - i
        for j in range(layers + 1):
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}", f"decoder.up.{up}.block.{j}", _VAE_RESNET))
        if i < levels - 1:
            pairs.append((f"encoder.down_blocks.{i}.downsamplers.0.conv", f"encoder.down.{i}.downsample.conv", {}))
            pairs.append((f"decoder.up_blocks.{i}.upsamplers.0.conv", f"decoder.up.{up}.upsample.conv", {}))
    return pairs


def _reshape_vae_attention(sd: dict[str, Any], to_conv: bool) -> dict[str, Any]:
    # The original VAE attention uses 1x1 convolutions; diffusers uses Linear layers (same numbers).
    rx = re.compile(r".*mid\.attn_1\.(q|k|v|proj_out)\.weight$" if to_conv
                    else r".*mid_block\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$")
    for key, value in sd.items():
        if rx.match(key):
            if to_conv and value.ndim == 2:
                sd[key] = value.reshape(*value.shape, 1, 1)
            elif not to_conv and value.ndim == 4:
                sd[key] = value.reshape(value.shape[0], value.shape[1])
    return sd


def vae_to_original(sd: Mapping[str, Any], prefix: str = VAE_PREFIX) -> dict[str, Any]:
    """diffusers AutoencoderKL state dict -> `first_stage_model.*` keys (pass prefix="" for a VAE file)."""
    levels = len(_indices(sd, r"encoder\.down_blocks\.(\d+)\."))
    layers = len(_indices(sd, r"encoder\.down_blocks\.0\.resnets\.(\d+)\."))
    mapped = _reshape_vae_attention(_map_keys(sd, vae_key_pairs(levels, layers), "VAE (diffusers layout)"), True)
    return {prefix + k: v for k, v in mapped.items()}


def vae_from_original(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """`first_stage_model.*` keys (or a standalone original-layout VAE file) -> diffusers VAE keys."""
    sd = _component(ckpt, VAE_PREFIX)
    sd = {k: v for k, v in sd.items() if not k.startswith(("loss.", "model_ema."))}
    levels = len(_indices(sd, r"encoder\.down\.(\d+)\."))
    layers = len(_indices(sd, r"encoder\.down\.0\.block\.(\d+)\."))
    mapped = _map_keys(sd, _invert(vae_key_pairs(levels, layers)), "VAE (original layout)")
    return _reshape_vae_attention(mapped, False)


# ---------------------------------------------------------------------------------------------- CLIP
def clip_to_original(sd: Mapping[str, Any], position_ids: bool = True) -> dict[str, Any]:
    """transformers CLIPTextModel state dict (flat 5.x keys or `text_model.` keys) -> original keys.

    Real SD1 files carry the `embeddings.position_ids` buffer; it is added unless `position_ids=False`.
    """
    out = {CLIP_TEXT_PREFIX + (k[len("text_model."):] if k.startswith("text_model.") else k): v
           for k, v in sd.items()}
    pos_key = CLIP_TEXT_PREFIX + "embeddings.position_embedding.weight"
    if position_ids and pos_key in out:
        import torch  # only here: the rest of this module is pure key logic

        out[CLIP_TEXT_PREFIX + "embeddings.position_ids"] = torch.arange(out[pos_key].shape[0])[None]
    return out


def clip_from_original(ckpt: Mapping[str, Any]) -> dict[str, Any]:
    """`cond_stage_model.transformer.[text_model.]*` keys -> flat CLIPTextModel keys (transformers >= 5.6).

    The non-persistent `embeddings.position_ids` buffer is dropped (the model makes its own).
    """
    sd = _component(ckpt, CLIP_PREFIX)
    out = {}
    for key, value in sd.items():
        key = key[len("text_model."):] if key.startswith("text_model.") else key
        if key == "embeddings.position_ids":
            continue
        if not key.startswith(("embeddings.", "encoder.layers.", "final_layer_norm.")):
            raise KeyMappingError(f"CLIP text encoder (original layout): unexpected key {key!r}")
        out[key] = value
    return out


# ----------------------------------------------------------------------------------------- checkpoint
def checkpoint_to_original(unet: Mapping[str, Any], vae: Mapping[str, Any],
                           clip: Mapping[str, Any]) -> dict[str, Any]:
    """Three diffusers/transformers state dicts -> one original-layout SD1 checkpoint dict."""
    return {**unet_to_original(unet), **vae_to_original(vae), **clip_to_original(clip)}


def checkpoint_from_original(ckpt: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    """One original-layout SD1 checkpoint dict -> (unet, vae, clip) diffusers/transformers state dicts."""
    parts = []
    for prefix, convert in ((UNET_PREFIX, unet_from_original), (VAE_PREFIX, vae_from_original),
                            (CLIP_PREFIX, clip_from_original)):
        part = {k: v for k, v in ckpt.items() if k.startswith(prefix)}
        if not part:
            raise KeyMappingError(f"checkpoint has no {prefix}* keys")
        parts.append(convert(part))
    return parts[0], parts[1], parts[2]
