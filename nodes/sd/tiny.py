"""Tiny random-weight SD1-architecture checkpoints for tests (a few MB, original single-file layout).

`write_tiny_checkpoint(path, seed=0)` is a stable public helper: sampling, server and training tests
use it. The architecture is SD1's (same block types, 32 norm groups, 8 UNet heads, quick-GELU CLIP
with the real 49,408-token vocabulary, a 4-level VAE so the latent is image size / 8) at small widths.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .convert import checkpoint_to_original

TINY_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8, norm_num_groups=32)
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, block_out_channels=(32,) * 4,
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                norm_num_groups=32, sample_size=64, scaling_factor=0.18215)
TINY_CLIP = dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=1,
                 max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32,
                 bos_token_id=49406, eos_token_id=49407, pad_token_id=1)


def tiny_modules(seed: int = 0, dtype: torch.dtype = torch.float16, clip_layers: int = 2,
                 unet_channels: tuple[int, ...] = (32, 64)) -> tuple[Any, Any, Any]:
    """(UNet2DConditionModel, AutoencoderKL, CLIPTextModel) in fp32 eval mode, random weights.

    Every weight is perturbed (so no two norms are equal by construction) and rounded through
    `dtype`, so these modules hold exactly the values `write_tiny_checkpoint` stores: they are the
    reference ("oracle") models for tests of the loader.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        levels = len(unet_channels)
        unet_cfg = dict(TINY_UNET, block_out_channels=tuple(unet_channels), cross_attention_dim=TINY_CLIP["hidden_size"],
                        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
                        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1))
        unet = UNet2DConditionModel(**unet_cfg)
        vae = AutoencoderKL(**TINY_VAE)
        clip = CLIPTextModel(CLIPTextConfig(**dict(TINY_CLIP, num_hidden_layers=clip_layers)))
    for module in (unet, vae, clip):
        module.eval().requires_grad_(False)
        for param in module.parameters():
            noise = torch.randn(param.shape, generator=gen) * 0.02
            param.copy_((param + noise).to(dtype).to(torch.float32))
    return unet, vae, clip


def write_tiny_checkpoint(path: str | os.PathLike, seed: int = 0, *, dtype: torch.dtype = torch.float16,
                          clip_layers: int = 2, unet_channels: tuple[int, ...] = (32, 64),
                          metadata: dict[str, str] | None = None) -> Path:
    """Write a tiny random SD1 checkpoint (original layout, safetensors) to `path`; return the path.

    Same `seed` and options give byte-identical files. About 5.5 MB in fp16 (the CLIP token table
    is most of it). Parent folders are created. The file loads with CheckpointLoaderSimple.
    """
    from safetensors.torch import save_file

    unet, vae, clip = tiny_modules(seed, dtype, clip_layers, unet_channels)
    ckpt = checkpoint_to_original(unet.state_dict(), vae.state_dict(), clip.state_dict())
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in ckpt.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"diffgraph.tiny": "1", **(metadata or {})})
    return path


def sd15_meta_checkpoint() -> dict[str, torch.Tensor]:
    """The full-size SD1.5 architecture as an original-layout state dict of meta tensors (shapes only,
    no memory): for shape-inference tests and the load benchmark."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(cross_attention_dim=768)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4)
        clip = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                            num_attention_heads=12, hidden_act="quick_gelu"))
    return checkpoint_to_original(unet.state_dict(), vae.state_dict(), clip.state_dict())


TINY_SD2_CLIP = dict(TINY_CLIP, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=1,
                     projection_dim=64, hidden_act="gelu", pad_token_id=0)


def tiny_sd2_modules(seed: int = 0, dtype: torch.dtype = torch.float16,
                     v_prediction: bool = False) -> tuple[Any, Any, Any]:
    """(UNet2DConditionModel, AutoencoderKL, CLIPTextModel) with SD2's structure at tiny widths: 64-channel
    heads, linear projections, a GELU text encoder of width 64; weights rounded through `dtype`. With
    `v_prediction` the norm bias the loader inspects gets the wide spread of the 768-v files."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from .convert import unet_to_original
    from .sd2 import v_prediction_key

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**dict(TINY_UNET, block_out_channels=(64, 128), attention_head_dim=(1, 2),
                                           use_linear_projection=True, cross_attention_dim=64,
                                           down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                           up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")))
        vae = AutoencoderKL(**TINY_VAE)
        clip = CLIPTextModel(CLIPTextConfig(**TINY_SD2_CLIP))
    for module in (unet, vae, clip):
        module.eval().requires_grad_(False)
        for param in module.parameters():
            noise = torch.randn(param.shape, generator=gen) * 0.02
            param.copy_((param + noise).to(dtype).to(torch.float32))
    if v_prediction:
        orig = unet_to_original(unet.state_dict(keep_vars=True))  # the same tensors, original names
        bias = orig[v_prediction_key(orig)]
        bias.copy_(torch.linspace(-0.5, 0.5, bias.numel()).to(dtype).to(torch.float32))
    return unet, vae, clip


def write_tiny_sd2_checkpoint(path: str | os.PathLike, seed: int = 0, *, v_prediction: bool = False,
                              marker: bool = False, dtype: torch.dtype = torch.float16) -> Path:
    """A tiny SD2-layout checkpoint (OpenCLIP `cond_stage_model.model.*` text tower). With
    `v_prediction` the UNet norm bias that ComfyUI inspects gets a wide spread (as in the 768-v files),
    or, with `marker`, the file carries a `v_pred` key instead. Deterministic for the same arguments."""
    from safetensors.torch import save_file

    from .convert import unet_to_original, vae_to_original
    from .sd2 import transformers_to_openclip

    unet, vae, clip = tiny_sd2_modules(seed, dtype, v_prediction and not marker)
    ckpt = {**unet_to_original(unet.state_dict()), **vae_to_original(vae.state_dict()),
            **transformers_to_openclip(clip.state_dict())}
    if v_prediction and marker:
        ckpt["v_pred"] = torch.zeros(())
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in ckpt.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"diffgraph.tiny": "1"})
    return path
