"""ComfyUI's `comfy.sd`: the MODEL/CLIP/VAE classes and loading a single-file checkpoint.

`load_checkpoint_guess_config` is the built-in CheckpointLoaderSimple's loader (nodes.sd.loader):
SD1-family original-layout files, safetensors first, pickle only with the opt-in. It returns our
DiffusionModel / ClipModel / VaeModel (each has `clone()`), not ComfyUI's ModelPatcher.
"""
from __future__ import annotations

import os
from typing import Any

from nodes.model_types import ClipModel, DiffusionModel, VaeModel

CLIP = ClipModel
VAE = VaeModel
MODEL = DiffusionModel

__all__ = ["CLIP", "VAE", "MODEL", "load_checkpoint_guess_config", "load_checkpoint"]


def load_checkpoint_guess_config(ckpt_path: str | os.PathLike, output_vae: bool = True, output_clip: bool = True,
                                 output_clipvision: bool = False, embedding_directory: Any = None,
                                 output_model: bool = True, **_: Any) -> tuple[Any, Any, Any, None]:
    """(model, clip, vae, clipvision) as ComfyUI returns them; unrequested parts and clipvision are None."""
    from nodes.sd.loader import load_checkpoint as load

    model, clip, vae = load(ckpt_path)
    return (model if output_model else None, clip if output_clip else None, vae if output_vae else None, None)


def load_checkpoint(config_path: Any = None, ckpt_path: str | os.PathLike | None = None, output_vae: bool = True,
                    output_clip: bool = True, embedding_directory: Any = None, **_: Any) -> tuple[Any, Any, Any]:
    """ComfyUI's older entry point: the yaml config is not needed (the architecture is read from shapes)."""
    if ckpt_path is None:
        raise ValueError("load_checkpoint needs ckpt_path")
    model, clip, vae, _clipvision = load_checkpoint_guess_config(ckpt_path, output_vae, output_clip)
    return model, clip, vae
