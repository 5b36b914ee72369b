"""SaveLatent and LoadLatent: LATENTs in `.latent` files, ComfyUI's format, so latents cached between runs
(or written by ComfyUI) move both ways.

The format (ComfyUI's nodes.py, learnt from its behaviour): a safetensors file holding `latent_tensor` (the
LATENT's `samples`, raw VAE latents) and an empty `latent_format_version_0` marker, with the workflow as
JSON strings in the safetensors metadata (`prompt`, and one key per extra_pnginfo entry such as `workflow`).
Files without the marker predate it and hold latents multiplied by SD's 0.18215: they are divided back.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from engine import COMBO, LATENT, STRING, Input, Output, UnsafePathError, active_paths, node

from .sd.files import file_sha256, save_counter_path

VERSION_KEY = "latent_format_version_0"
LEGACY_SCALE = 0.18215  # files without VERSION_KEY stored samples x this


def list_latents(folder: Path) -> list[str]:
    """`.latent` files directly in `folder`, sorted (LoadLatent's choices)."""
    if not folder.is_dir():
        return []
    return sorted(f.name for f in folder.iterdir() if f.is_file() and f.suffix == ".latent")


def write_latent_file(path: Path, samples: torch.Tensor, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {"latent_tensor": samples.detach().cpu().contiguous(), VERSION_KEY: torch.tensor([])}
    save_file(tensors, str(path), metadata=metadata)


def read_latent_file(path: Path) -> dict[str, torch.Tensor]:
    """A `.latent` file as a LATENT: `{"samples": float32}`; legacy files (no version key) are rescaled."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{path.name} is not a readable .latent (safetensors) file: {exc}") from exc
    if "latent_tensor" not in tensors:
        raise ValueError(f"{path.name} has no 'latent_tensor': not a latent file saved by SaveLatent")
    scale = 1.0 if VERSION_KEY in tensors else 1.0 / LEGACY_SCALE
    return {"samples": tensors["latent_tensor"].float() * scale}


@node("SaveLatent", category="_for_testing", display_name="Save Latent", output_node=True,
      hidden=("prompt", "extra_pnginfo"))
class SaveLatent:
    """Saves a LATENT to the output folder as `{prefix}_{counter:05}_.latent` (ComfyUI's format)."""

    inputs = (Input("samples", LATENT), Input("filename_prefix", STRING, default="latents/ComfyUI"))
    outputs = ()

    def run(self, samples: dict[str, Any], filename_prefix: str = "latents/ComfyUI", prompt: Any = None,
            extra_pnginfo: Any = None) -> dict[str, Any]:
        path, subfolder, name = save_counter_path(active_paths().output, filename_prefix, ".latent")
        metadata = {"prompt": json.dumps(prompt)} if prompt is not None else {}
        metadata.update({key: json.dumps(value) for key, value in (extra_pnginfo or {}).items()})
        write_latent_file(path, samples["samples"], metadata or None)
        return {"ui": {"latents": [{"filename": name, "subfolder": subfolder, "type": "output"}]}}


@node("LoadLatent", category="_for_testing", display_name="Load Latent")
class LoadLatent:
    """Loads a `.latent` file from the input folder (written by SaveLatent here or in ComfyUI)."""

    inputs = (Input("latent", COMBO, options=lambda: list_latents(active_paths().input)),)
    outputs = (Output(LATENT, "LATENT"),)

    def run(self, latent: str) -> tuple[dict[str, torch.Tensor]]:
        return (read_latent_file(active_paths().annotated_path(latent)),)

    @classmethod
    def IS_CHANGED(cls, latent: str) -> str:  # noqa: N802 - ComfyUI's protocol name
        return file_sha256(active_paths().annotated_path(latent))

    @classmethod
    def VALIDATE_INPUTS(cls, latent: str) -> bool | str:  # noqa: N802
        try:
            ok = active_paths().annotated_path(latent).is_file()
        except (UnsafePathError, TypeError):
            ok = False
        return True if ok else f"Invalid latent file: {latent}"


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (SaveLatent, LoadLatent)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
