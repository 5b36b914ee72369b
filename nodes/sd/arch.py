"""Architecture inference: which model family a checkpoint holds, and its configs from tensor shapes.

Everything is read from key names and shapes (channels, levels, blocks, attention placement,
transformer depth, context dim, in/out channels), so a full SD1.5 file and a tiny test file go
through the same code. What shapes cannot tell (UNet heads, norm groups, VAE scale) follows the
family's convention. SD2.x differs in its text encoder and head size (nodes/sd/sd2.py); SDXL is
recognised and refused with what was found.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .convert import CLIP_PREFIX, UNET_PREFIX, VAE_PREFIX
from .safetensors_io import CheckpointError
from .sd2 import OPENCLIP_PREFIX, is_sd2, openclip_shapes, sd2_clip_config, sd2_unet_config

Shapes = Mapping[str, tuple[int, ...]]

# The published SD1.x scheduler config (a PNDMScheduler's, as diffusers' SD1.5 pipeline ships it): every key
# matters once a user swaps schedulers with from_config. Without skip_prk_steps, PNDM runs its Runge-Kutta
# warm-up; without clip_sample False, DDIM clips x0.
SD1_SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
                 "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "clip_sample": False,
                 "set_alpha_to_one": False, "steps_offset": 1, "skip_prk_steps": True, "trained_betas": None}
SD1_UNET_HEADS = 8  # SD1's num_heads (diffusers calls it attention_head_dim); not visible in shapes
NORM_GROUPS = 32
SD1_VAE_SCALE = 0.18215
CLIP_HEAD_DIM = 64  # ViT-L/14 text: 768 = 12 x 64


@dataclass(frozen=True)
class Architecture:
    """A recognised SD1 checkpoint: diffusers/transformers configs and the noise schedule."""

    family: str
    unet: dict[str, Any]
    vae: dict[str, Any]
    clip: dict[str, Any]
    scheduler: dict[str, Any]


def _sub(shapes: Shapes, prefix: str) -> dict[str, tuple[int, ...]]:
    return {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}


def _indices(keys: Any, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def _prefixes(keys: Any, n: int = 6) -> str:
    tops = sorted({k.split(".")[0] for k in keys})
    return ", ".join(tops[:n]) + (", ..." if len(tops) > n else "") if tops else "(no tensors)"


def detect_family(shapes: Shapes) -> str:
    """"sd1", or a CheckpointError that says which other family (SD2.x, SDXL, unknown) was found."""
    keys = shapes.keys()
    unet = _sub(shapes, UNET_PREFIX)
    ctx = next((s[1] for k, s in unet.items() if k.endswith("attn2.to_k.weight")), None)
    if any(k.startswith("conditioner.embedders.") for k in keys) or "label_emb.0.0.weight" in unet:
        raise CheckpointError(f"this is an SDXL checkpoint (conditioner.embedders.*, label_emb, context_dim "
                              f"{ctx}); only Stable Diffusion 1.x and 2.x checkpoints are supported so far")
    family, text = ("sd2", OPENCLIP_PREFIX) if is_sd2(keys) else ("sd1", CLIP_PREFIX)
    name = "Stable Diffusion 2.x" if family == "sd2" else "Stable Diffusion 1.x"
    missing = [p for p in (UNET_PREFIX, VAE_PREFIX, text) if not any(k.startswith(p) for k in keys)]
    if missing:
        raise CheckpointError(f"not a {name} checkpoint: no {', '.join(p + '*' for p in missing)} "
                              f"keys (top-level names found: {_prefixes(keys)})")
    if ctx is not None and ctx != _clip_width(shapes):
        raise CheckpointError(f"UNet context_dim {ctx} does not match the {name} text encoder width "
                              f"{_clip_width(shapes)}")
    return family


def _clip_width(shapes: Shapes) -> int | None:
    clip = _clip_shapes(shapes)
    emb = clip.get("embeddings.token_embedding.weight")
    return emb[1] if emb else None


def _clip_shapes(shapes: Shapes) -> dict[str, tuple[int, ...]]:
    if is_sd2(shapes.keys()):
        return openclip_shapes(shapes)
    clip = _sub(shapes, CLIP_PREFIX)
    return {(k[len("text_model."):] if k.startswith("text_model.") else k): v for k, v in clip.items()}


def unet_config(unet: Shapes) -> dict[str, Any]:
    """diffusers UNet2DConditionModel config from original-layout shapes (prefix removed)."""
    try:
        conv_in = unet["input_blocks.0.0.weight"]
        downs = _indices(unet, r"input_blocks\.(\d+)\.0\.op\.weight")
        levels = len(downs) + 1
        layers = (len(_indices(unet, r"input_blocks\.(\d+)\.")) - 1 - len(downs)) // levels
        step = layers + 1
        channels = [unet[f"input_blocks.{step * i + 1}.0.out_layers.3.weight"][0] for i in range(levels)]
        attention = [f"input_blocks.{step * i + 1}.1.proj_in.weight" in unet for i in range(levels)]
        proj_in = next(s for k, s in unet.items() if k.endswith("proj_in.weight"))
        depth = len(_indices(unet, r"middle_block\.1\.transformer_blocks\.(\d+)\."))
        context = next(s[1] for k, s in unet.items() if k.endswith("attn2.to_k.weight"))
    except (KeyError, StopIteration) as exc:
        raise CheckpointError(f"UNet layout not recognised (missing {exc}); is this an SD1.x/2.x checkpoint?") from None
    if layers < 1 or any(c % NORM_GROUPS for c in channels):
        raise CheckpointError(f"UNet layout not recognised: {layers} layers per block, channels {channels}")
    cfg = dict(sample_size=64, in_channels=conv_in[1], out_channels=unet["out.2.weight"][0],
               block_out_channels=channels, layers_per_block=layers, cross_attention_dim=context,
               down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
               up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
               attention_head_dim=SD1_UNET_HEADS, use_linear_projection=len(proj_in) == 2,
               transformer_layers_per_block=max(depth, 1), norm_num_groups=NORM_GROUPS, act_fn="silu",
               flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, mid_block_scale_factor=1,
               norm_eps=1e-5, center_input_sample=False, upcast_attention=False)
    if unet["time_embed.0.weight"][0] != channels[0] * 4:
        cfg["time_embedding_dim"] = unet["time_embed.0.weight"][0]
    return cfg


def vae_config(vae: Shapes, scaling_factor: float = SD1_VAE_SCALE) -> dict[str, Any]:
    """diffusers AutoencoderKL config from original-layout VAE shapes (prefix removed)."""
    try:
        levels = len(_indices(vae, r"encoder\.down\.(\d+)\."))
        layers = len(_indices(vae, r"encoder\.down\.0\.block\.(\d+)\."))
        channels = [vae[f"encoder.down.{i}.block.0.conv2.weight"][0] for i in range(levels)]
        cfg = dict(in_channels=vae["encoder.conv_in.weight"][1], out_channels=vae["decoder.conv_out.weight"][0],
                   latent_channels=vae["quant_conv.weight"][0] // 2, block_out_channels=channels,
                   down_block_types=["DownEncoderBlock2D"] * levels, up_block_types=["UpDecoderBlock2D"] * levels,
                   layers_per_block=layers, norm_num_groups=NORM_GROUPS, act_fn="silu", sample_size=512,
                   scaling_factor=scaling_factor)
    except KeyError as exc:
        raise CheckpointError(f"VAE layout not recognised (missing {exc})") from None
    if levels < 1 or layers < 1:
        raise CheckpointError("VAE layout not recognised: no encoder.down.* blocks")
    return cfg


def clip_config(clip: Shapes) -> dict[str, Any]:
    """transformers CLIPTextConfig kwargs from CLIP text-encoder shapes (prefixes removed)."""
    try:
        vocab, width = clip["embeddings.token_embedding.weight"]
        positions = clip["embeddings.position_embedding.weight"][0]
        layers = len(_indices(clip, r"encoder\.layers\.(\d+)\."))
        inner = clip["encoder.layers.0.mlp.fc1.weight"][0]
    except KeyError as exc:
        raise CheckpointError(f"CLIP text encoder layout not recognised (missing {exc})") from None
    return dict(vocab_size=vocab, hidden_size=width, intermediate_size=inner, num_hidden_layers=layers,
                num_attention_heads=max(1, width // CLIP_HEAD_DIM), max_position_embeddings=positions,
                hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=width,
                bos_token_id=49406, eos_token_id=49407, pad_token_id=1)


def infer_architecture(shapes: Shapes) -> Architecture:
    """Family and configs of a whole original-layout checkpoint, from its key -> shape map."""
    family = detect_family(shapes)
    unet, clip = unet_config(_sub(shapes, UNET_PREFIX)), clip_config(_clip_shapes(shapes))
    if family == "sd2":
        unet, clip = sd2_unet_config(unet), sd2_clip_config(clip)
    return Architecture(family=family, unet=unet, vae=vae_config(_sub(shapes, VAE_PREFIX)), clip=clip,
                        scheduler=dict(SD1_SCHEDULER))


def standalone_vae_layout(shapes: Shapes) -> str:
    """"original" (encoder.down.*), "diffusers" (encoder.down_blocks.*), or a CheckpointError."""
    keys = [k[len(VAE_PREFIX):] if k.startswith(VAE_PREFIX) else k for k in shapes]
    if any(k.startswith("encoder.down.") for k in keys):
        return "original"
    if any(k.startswith("encoder.down_blocks.") for k in keys):
        return "diffusers"
    raise CheckpointError(f"not a VAE file: no encoder.down.* or encoder.down_blocks.* keys "
                          f"(top-level names found: {_prefixes(shapes.keys())})")
