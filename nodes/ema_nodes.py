"""EMA merge nodes: the seed's θ_ema ← α·θ_ema + (1−α)·θ over MODEL, CLIP, VAE or whole checkpoints,
and a fold of an ordered list of checkpoint files (a training run's snapshots) into their EMA.

Results are new modules built on the meta device around new tensors; inputs are never modified.
The fold follows diffusers' EMAModel (optionally its decay warm-up) and can be saved with CheckpointSave.
"""
from __future__ import annotations

import glob
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine import CLIP, COMBO, FLOAT, MODEL, STRING, VAE, Input, Output, RunContext, active_paths, node, safe_join

from .model_types import ClipModel, DiffusionModel, VaeModel
from .sd.ema import WARMUP_MODES, EmaFold, merge_state_dicts
from .sd.loader import module_like, objects_from_original, read_original
from .sd.safetensors_io import CheckpointError

DECAY = Input("decay", FLOAT, default=0.999, min=0.0, max=1.0, step=0.00001,
              tooltip="α in θ_ema ← α·θ_ema + (1−α)·θ: the weight kept from the EMA input.")


def merge_model(ema: DiffusionModel, model: DiffusionModel, decay: float) -> DiffusionModel:
    sd = merge_state_dicts(ema.unet.state_dict(), model.unet.state_dict(), decay)
    return replace(ema.clone(), unet=module_like(ema.unet, sd))


def merge_clip(ema: ClipModel, clip: ClipModel, decay: float) -> ClipModel:
    sd = merge_state_dicts(ema.text_encoder.state_dict(), clip.text_encoder.state_dict(), decay)
    return replace(ema.clone(), text_encoder=module_like(ema.text_encoder, sd))


def merge_vae(ema: VaeModel, vae: VaeModel, decay: float) -> VaeModel:
    sd = merge_state_dicts(ema.vae.state_dict(), vae.vae.state_dict(), decay)
    return replace(ema.clone(), vae=module_like(ema.vae, sd))


@node("ModelMergeEMA", category="advanced/model_merging", display_name="Model Merge (EMA)")
class ModelMergeEMA:
    """One EMA step over two diffusion models: decay·ema + (1−decay)·model."""

    inputs = (Input("ema", MODEL), Input("model", MODEL), DECAY)
    outputs = (Output(MODEL, "MODEL"),)

    def run(self, ema: DiffusionModel, model: DiffusionModel, decay: float) -> tuple[DiffusionModel]:
        return (merge_model(ema, model, decay),)


@node("CLIPMergeEMA", category="advanced/model_merging", display_name="CLIP Merge (EMA)")
class CLIPMergeEMA:
    """One EMA step over two CLIP text encoders (the EMA input's clip skip is kept)."""

    inputs = (Input("ema", CLIP), Input("clip", CLIP), DECAY)
    outputs = (Output(CLIP, "CLIP"),)

    def run(self, ema: ClipModel, clip: ClipModel, decay: float) -> tuple[ClipModel]:
        return (merge_clip(ema, clip, decay),)


@node("VAEMergeEMA", category="advanced/model_merging", display_name="VAE Merge (EMA)")
class VAEMergeEMA:
    """One EMA step over two VAEs."""

    inputs = (Input("ema", VAE), Input("vae", VAE), DECAY)
    outputs = (Output(VAE, "VAE"),)

    def run(self, ema: VaeModel, vae: VaeModel, decay: float) -> tuple[VaeModel]:
        return (merge_vae(ema, vae, decay),)


@node("CheckpointMergeEMA", category="advanced/model_merging", display_name="Checkpoint Merge (EMA)")
class CheckpointMergeEMA:
    """One EMA step over whole checkpoints (model, CLIP and VAE at once)."""

    inputs = (Input("ema_model", MODEL), Input("ema_clip", CLIP), Input("ema_vae", VAE),
              Input("model", MODEL), Input("clip", CLIP), Input("vae", VAE), DECAY)
    outputs = (Output(MODEL, "MODEL"), Output(CLIP, "CLIP"), Output(VAE, "VAE"))

    def run(self, ema_model: DiffusionModel, ema_clip: ClipModel, ema_vae: VaeModel, model: DiffusionModel,
            clip: ClipModel, vae: VaeModel, decay: float) -> tuple[DiffusionModel, ClipModel, VaeModel]:
        return merge_model(ema_model, model, decay), merge_clip(ema_clip, clip, decay), merge_vae(ema_vae, vae, decay)


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def resolve_checkpoint_list(text: str) -> list[Path]:
    """One checkpoint name per line, in order; a line with * ? [ is a glob, expanded in natural order
    (step_9 before step_10). Names resolve in the checkpoint folders and never outside them."""
    paths = active_paths()
    out: list[Path] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if any(ch in line for ch in "*?["):
            found = {}
            for root in paths.models.get("checkpoints", []):
                for match in glob.glob(str(safe_join(root)) + "/" + line, recursive=False):
                    rel = Path(match).relative_to(safe_join(root)).as_posix()
                    full = paths.get_full_path("checkpoints", rel)  # follows the owner's symlinks
                    if full is not None:
                        found.setdefault(rel, full)
            if not found:
                raise FileNotFoundError(f"no checkpoint matches {line!r}")
            out += [found[k] for k in sorted(found, key=_natural_key)]
        else:
            path = paths.get_full_path("checkpoints", line)
            if path is None:
                raise FileNotFoundError(f"checkpoint {line!r} not found in the checkpoint folders")
            out.append(path)
    if not out:
        raise ValueError("ckpt_names lists no checkpoints")
    return out


@node("CheckpointListEMA", category="advanced/model_merging", display_name="Checkpoint List EMA")
class CheckpointListEMA:
    """Folds an ordered list of checkpoints (a training run's snapshots) into their EMA, like diffusers'
    EMAModel: the first is the start, each later one is one step (with optional decay warm-up)."""

    inputs = (Input("ckpt_names", STRING, default="", multiline=True,
                    tooltip="One checkpoint per line, oldest first; globs like run/step_*.safetensors allowed."),
              DECAY,
              Input("warmup", COMBO, options=WARMUP_MODES, default="none",
                    tooltip="none: constant decay; diffusers_default: min(decay, (1+t)/(10+t)); "
                            "diffusers_power: 1-(1+t)^-power."),
              Input("power", FLOAT, default=0.6667, min=0.0, max=10.0, step=0.0001))
    outputs = (Output(MODEL, "MODEL"), Output(CLIP, "CLIP"), Output(VAE, "VAE"))

    def run(self, ckpt_names: str, decay: float, warmup: str, power: float,
            ctx: RunContext | None = None) -> tuple[DiffusionModel, ClipModel, VaeModel]:
        files = resolve_checkpoint_list(ckpt_names)
        fold, first_arch = EmaFold(decay=decay, warmup=warmup, power=power), None
        for index, path in enumerate(files):
            tensors, arch = read_original(path)
            if first_arch is None:
                first_arch = arch
            elif arch != first_arch:
                raise CheckpointError(f"{path.name}: its architecture differs from {files[0].name}'s")
            fold.add(tensors)
            del tensors
            if ctx is not None:
                ctx.progress(index + 1, len(files))
        assert fold.shadow is not None and first_arch is not None
        return objects_from_original(fold.shadow, first_arch)

    @classmethod
    def IS_CHANGED(cls, ckpt_names: str, **_: Any) -> Any:  # noqa: N802 - ComfyUI's protocol name
        try:
            files = resolve_checkpoint_list(ckpt_names)
        except (OSError, ValueError):
            return float("nan")
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files]


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (ModelMergeEMA, CLIPMergeEMA, VAEMergeEMA, CheckpointMergeEMA,
                                                       CheckpointListEMA)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
