"""The demo model's architecture (SD1 block types at small widths), tokenizer, and checkpoint writer.

Sizes are chosen for a <= 20 MB fp16 file and well under an hour of training on a 2-core CPU:
32x32 pictures, a 3-level VAE (latent 4x8x8, image / 4), a 3-level UNet, a 3-layer CLIP text
encoder whose token table (the real 49,408-entry vocabulary) is most of its weight. The VAE's top
level has 64 channels, 2 per norm group: with SD1's 32 groups, 32 channels would be one per group,
an instance norm that erases a flat region's absolute colour (measured: it stalls training).
Nodes follow ComfyUI's latent = image / 8, so a 64x64 EmptyLatentImage (8x8 latent) gives a 32x32 picture.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

RESOLUTION = 32
SCALING_FACTOR = 0.18215  # SD1's; the trained latents are rescaled so that std(latent) * this == 1
VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                  block_out_channels=(64, 64, 64), down_block_types=("DownEncoderBlock2D",) * 3,
                  up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=32, sample_size=RESOLUTION,
                  scaling_factor=SCALING_FACTOR)
CLIP_CONFIG = dict(vocab_size=49408, hidden_size=32, intermediate_size=128, num_hidden_layers=3,
                   num_attention_heads=1, max_position_embeddings=77, hidden_act="quick_gelu",
                   layer_norm_eps=1e-5, projection_dim=32, bos_token_id=49406, eos_token_id=49407, pad_token_id=1)
UNET_CONFIG = dict(sample_size=RESOLUTION // 4, in_channels=4, out_channels=4, layers_per_block=1,
                   block_out_channels=(64, 128, 128),
                   down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                   up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                   attention_head_dim=8, norm_num_groups=32, cross_attention_dim=CLIP_CONFIG["hidden_size"])
# SD1's training noise schedule; the loader assumes it for SD1 checkpoints.
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="epsilon")
MAX_TOKENS = 77


def build_models(seed: int) -> tuple[Any, Any, Any]:
    """Fresh (unet, vae, text_encoder) with seeded random init, fp32, train mode."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    vae = AutoencoderKL(**VAE_CONFIG)
    unet = UNet2DConditionModel(**UNET_CONFIG)
    clip = CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG))
    return unet, vae, clip


def load_tokenizer() -> Any:
    """The CLIP tokenizer real SD1 checkpoints use (the SD nodes' offline copy), so prompts match."""
    from nodes.sd.text import clip_tokenizer

    return clip_tokenizer()


def token_ids(tokenizer: Any, prompts: list[str]) -> torch.Tensor:
    """[N, 77] ids: BOS, prompt, EOS, padded with EOS as SD1 text encoders see them."""
    out = tokenizer(prompts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt")
    return out.input_ids


def count_params(*modules: Any) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def save_original_checkpoint(path: str | os.PathLike, unet: Any, vae: Any, clip: Any,
                             metadata: dict[str, str] | None = None, dtype: torch.dtype = torch.float16) -> Path:
    """Write the three modules as one original-layout SD1 safetensors file (fp16 by default)."""
    from safetensors.torch import save_file

    from nodes.sd.convert import checkpoint_to_original

    ckpt = checkpoint_to_original(unet.state_dict(), vae.state_dict(), clip.state_dict())
    tensors = {k: (v.detach().to(dtype) if v.is_floating_point() else v).contiguous() for k, v in ckpt.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata or {})
    return path
