"""Loader nodes: CheckpointLoaderSimple (and its alias LoadCheckpoint), VAELoader, CheckpointSave,
CLIPSetLastLayer, with ComfyUI's class names, inputs and outputs.

Model files are listed and resolved through `engine.active_paths()` (models/checkpoints, models/vae,
extra_model_paths.yaml, output/checkpoints); reading and mapping live in nodes/sd.
"""
from __future__ import annotations

import json
from typing import Any

from engine import CLIP, COMBO, INT, MODEL, STRING, VAE, Input, Output, active_paths, node

from .model_types import ClipModel, DiffusionModel, VaeModel
from .sd.files import save_counter_path
from .sd.loader import checkpoint_state_dict, load_checkpoint, load_vae, save_file_atomic


def file_fingerprint(folder: str, name: str) -> Any:
    """IS_CHANGED for model files: size and mtime, so a file rewritten under the same name
    (a training run's latest snapshot) is reloaded rather than served from the cache."""
    path = active_paths().get_full_path(folder, name)
    if path is None:
        return float("nan")  # missing: always re-run, so the node reports the error
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def model_path(folder: str, name: str) -> Any:
    """The full path of a listed model file, or a FileNotFoundError naming the folder."""
    path = active_paths().get_full_path(folder, name)
    if path is None:
        raise FileNotFoundError(f"{folder} file {name!r} not found; put it in models/{folder}/ "
                                f"(available: {', '.join(active_paths().get_filename_list(folder)[:10]) or 'none'})")
    return path


@node("CheckpointLoaderSimple", category="loaders", display_name="Load Checkpoint")
class CheckpointLoaderSimple:
    """Loads a Stable Diffusion 1.x single-file checkpoint: the diffusion model, CLIP and VAE."""

    inputs = (Input("ckpt_name", COMBO, options=lambda: active_paths().get_filename_list("checkpoints"),
                    tooltip="The name of the checkpoint (model) to load."),)
    outputs = (Output(MODEL, "MODEL", "The model used for denoising latents."),
               Output(CLIP, "CLIP", "The CLIP model used for encoding text prompts."),
               Output(VAE, "VAE", "The VAE model used for encoding and decoding images to and from latent space."))

    def run(self, ckpt_name: str) -> tuple[DiffusionModel, ClipModel, VaeModel]:
        return load_checkpoint(model_path("checkpoints", ckpt_name))

    @classmethod
    def IS_CHANGED(cls, ckpt_name: str) -> Any:  # noqa: N802 - ComfyUI's protocol name
        return file_fingerprint("checkpoints", ckpt_name)


@node("LoadCheckpoint", category="loaders", display_name="Load Checkpoint (alias)")
class LoadCheckpoint(CheckpointLoaderSimple):
    """Same as CheckpointLoaderSimple, under the name the issue tracker and older docs use."""


@node("VAELoader", category="loaders", display_name="Load VAE")
class VAELoader:
    """Loads a standalone VAE (original layout, e.g. vae-ft-mse-840000, or diffusers layout)."""

    inputs = (Input("vae_name", COMBO, options=lambda: active_paths().get_filename_list("vae")),)
    outputs = (Output(VAE, "VAE"),)

    def run(self, vae_name: str) -> tuple[VaeModel]:
        return (load_vae(model_path("vae", vae_name)),)

    @classmethod
    def IS_CHANGED(cls, vae_name: str) -> Any:  # noqa: N802
        return file_fingerprint("vae", vae_name)


@node("CheckpointSave", category="advanced/model_merging", display_name="Save Checkpoint", output_node=True,
      hidden=("prompt", "extra_pnginfo"))
class CheckpointSave:
    """Saves MODEL, CLIP and VAE as one original-layout safetensors file under the output folder."""

    inputs = (Input("model", MODEL), Input("clip", CLIP), Input("vae", VAE),
              Input("filename_prefix", STRING, default="checkpoints/ComfyUI"))
    outputs = ()

    def run(self, model: DiffusionModel, clip: ClipModel, vae: VaeModel, filename_prefix: str,
            prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        arch_name = "stable-diffusion-v2" if model.family == "sd2" else "stable-diffusion-v1"
        metadata = {"modelspec.architecture": arch_name, "diffgraph.family": model.family}
        if prompt is not None:
            metadata["prompt"] = json.dumps(prompt)
        for key, value in (extra_pnginfo or {}).items():
            metadata[key] = json.dumps(value)
        tensors = checkpoint_state_dict(model, clip, vae)
        path, _sub, _name = save_counter_path(active_paths().output, filename_prefix, ".safetensors")
        save_file_atomic(tensors, path, metadata)
        return {"ui": {}}


@node("CLIPSetLastLayer", category="conditioning", display_name="CLIP Set Last Layer")
class CLIPSetLastLayer:
    """Clip skip: use the output of an earlier CLIP layer (-1 = last, -2 = the one before, ...)."""

    inputs = (Input("clip", CLIP), Input("stop_at_clip_layer", INT, default=-1, min=-24, max=-1, step=1))
    outputs = (Output(CLIP, "CLIP"),)

    def run(self, clip: ClipModel, stop_at_clip_layer: int) -> tuple[ClipModel]:
        out = clip.clone()
        out.layer_idx = stop_at_clip_layer
        return (out,)


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (CheckpointLoaderSimple, LoadCheckpoint, VAELoader,
                                                       CheckpointSave, CLIPSetLastLayer)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
