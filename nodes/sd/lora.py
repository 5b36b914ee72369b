"""LoRA files merged into MODEL / CLIP weights: W' = W + strength · (alpha / rank) · up @ down.

Formats: kohya/A1111 (`lora_unet_*` with diffusers or LDM module names, `lora_te_*`, LoCon convs, Tucker
`lora_mid`), diffusers/PEFT (`unet.*.lora_A/B`, `text_encoder.*`, `lora_adapter_metadata` alphas) and older
diffusers layouts. Unmatched keys are logged "lora key not loaded" (as ComfyUI); results are new modules.
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..model_types import ClipModel, DiffusionModel
from .convert import UNET_PREFIX, KeyMappingError, unet_to_original
from .loader import module_like
from .safetensors_io import CheckpointError, StateDictSource

logger = logging.getLogger(__name__)

# Key suffix -> part of a LoRA block. `up`/`down` are B/A (out x rank, rank x in); the longest
# suffix is tried first so `.lora_linear_layer.up.weight` never reads as `.up.weight`.
SUFFIXES = {
    ".lora_up.weight": "up", ".lora_down.weight": "down", ".lora_mid.weight": "mid",       # kohya / LoCon
    ".lora_B.weight": "up", ".lora_A.weight": "down",                                       # PEFT
    ".lora_linear_layer.up.weight": "up", ".lora_linear_layer.down.weight": "down",         # diffusers (old)
    ".lora.up.weight": "up", ".lora.down.weight": "down",                                   # diffusers (old)
    "_lora.up.weight": "up", "_lora.down.weight": "down",                                   # attn processors
    ".alpha": "alpha", ".dora_scale": "dora_scale", ".lora_magnitude_vector": "dora_scale",
}
_ORDERED_SUFFIXES = sorted(SUFFIXES, key=len, reverse=True)
UNSUPPORTED = {".hada_w1_a": "LoHa", ".lokr_w1": "LoKr", ".lokr_w1_a": "LoKr", ".oft_blocks": "OFT",
               ".diff": "full-difference", ".w_norm": "norm"}
CLIP_FILE_PREFIXES = ("lora_te", "text_encoder.")  # lora_te_, lora_te1_, lora_te2_ (SDXL)
METADATA_KEY = "lora_adapter_metadata"  # diffusers' PEFT LoraConfig, JSON, per component prefix


class LoraError(CheckpointError):
    """A file that cannot be used as a LoRA (not one, unsupported kind, unreadable)."""


@dataclass
class LoraBlock:
    """The tensors' keys of one adapted module in the file: parts up/down[/mid/alpha/dora_scale]."""

    prefix: str
    parts: dict[str, str] = field(default_factory=dict)

    def keys(self) -> list[str]:
        return list(self.parts.values())


@dataclass
class LoraReport:
    """What a merge did: target weights changed per component, and file keys not loaded."""

    patched: dict[str, list[str]] = field(default_factory=dict)
    not_loaded: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------- file layout
def split_key(key: str) -> tuple[str, str] | None:
    """(module prefix, part) of a LoRA tensor key, or None when the key is no LoRA part."""
    for suffix in _ORDERED_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], SUFFIXES[suffix]
    return None


def group_keys(keys: Iterable[str], name: str) -> tuple[dict[str, LoraBlock], list[str]]:
    """({prefix: block}, keys that are no LoRA part); a LoraError when no block has up and down."""
    keys = list(keys)
    blocks: dict[str, LoraBlock] = {}
    loose: list[str] = []
    for key in keys:
        split = split_key(key)
        if split is None:
            loose.append(key)
            continue
        blocks.setdefault(split[0], LoraBlock(split[0])).parts[split[1]] = key
    if not any({"up", "down"} <= set(b.parts) for b in blocks.values()):
        raise LoraError(_not_a_lora_message(name, keys))
    return blocks, loose


def _not_a_lora_message(name: str, keys: list[str]) -> str:
    hint = ""
    if any(k.startswith(("model.diffusion_model.", "first_stage_model.", "cond_stage_model.")) for k in keys):
        hint = " It looks like a full checkpoint: put it in models/checkpoints and use Load Checkpoint."
    for marker, kind in UNSUPPORTED.items():
        if not hint and any(k.endswith(marker) for k in keys):
            return (f"{name}: is a LyCORIS {kind} file ({marker.strip('.')} weights); only LoRA/LoCon "
                    f"(lora_up/lora_down, lora_A/lora_B) files are supported")
    sample = ", ".join(repr(k) for k in keys[:3]) or "none"
    return (f"{name}: not a LoRA file: none of its {len(keys)} tensors is a LoRA factor (*.lora_up/lora_down.weight "
            f"or *.lora_A/lora_B.weight); first keys: {sample}.{hint}")


def read_metadata_configs(metadata: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """diffusers' `lora_adapter_metadata` (PEFT LoraConfig fields) split per component ("unet",
    "text_encoder"); an unprefixed config (a model-level save) applies to both."""
    raw = metadata.get(METADATA_KEY)
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError:
        logger.warning("LoRA metadata %s is not JSON; alphas default to the rank", METADATA_KEY)
        return {}
    out: dict[str, dict[str, Any]] = {}
    for component in ("unet", "text_encoder"):
        part = {k[len(component) + 1:]: v for k, v in config.items() if k.startswith(component + ".")}
        out[component] = part or {k: v for k, v in config.items() if "." not in k}
    return out


def peft_alpha(config: Mapping[str, Any], module: str) -> tuple[float | None, bool]:
    """(lora_alpha for `module` from a PEFT config (alpha_pattern first), use_rslora)."""
    for pattern, alpha in (config.get("alpha_pattern") or {}).items():
        if re.match(rf"(.*\.)?({pattern.lstrip('^')})$", module):
            return float(alpha), bool(config.get("use_rslora"))
    alpha = config.get("lora_alpha")
    return (float(alpha) if alpha is not None else None), bool(config.get("use_rslora"))


# ------------------------------------------------------------------------------------- model names
def _weight_keys(module: torch.nn.Module, ndims: tuple[int, ...]) -> list[str]:
    return [k for k, v in module.state_dict().items() if k.endswith(".weight") and v.ndim in ndims]


def _add(names: dict[str, str], alias: str, key: str) -> None:
    # First writer wins: the two SD naming schemes never produce the same alias for different weights.
    names.setdefault(alias, key)


def unet_lora_names(unet: torch.nn.Module) -> dict[str, str]:
    """Every name a LoRA file may use for a UNet weight -> its key in `unet.state_dict()`."""
    state = unet.state_dict()
    targets = set(_weight_keys(unet, (2, 4)))
    names: dict[str, str] = {}
    for key in sorted(targets):
        module = key[: -len(".weight")]
        _add(names, "lora_unet_" + module.replace(".", "_"), key)
        _add(names, "unet." + module, key)
        processor = re.sub(r"\.(attn\d)\.(to_[qkv]|to_out)(\.0)?$", r".\1.processor.\2", module)
        _add(names, "unet." + processor, key)  # diffusers' attention-processor layout
    try:
        original = unet_to_original({k: k for k in state})  # key logic only: values are the diffusers keys
    except KeyMappingError:  # a UNet outside the SD layout: only diffusers names apply
        original = {}
    for ldm_key, key in original.items():
        if key in targets:
            module = ldm_key[len(UNET_PREFIX): -len(".weight")]
            _add(names, "lora_unet_" + module.replace(".", "_"), key)
            _add(names, "diffusion_model." + module, key)  # ComfyUI's own LoRA saves
    return names


def clip_lora_names(text_encoder: torch.nn.Module) -> dict[str, str]:
    """Every name a LoRA file may use for a CLIP text-encoder weight -> its state-dict key.

    transformers >= 5.6 has flat keys (`encoder.layers.0...`); files name `text_model.encoder...`."""
    names: dict[str, str] = {}
    for key in _weight_keys(text_encoder, (2,)):
        if "embeddings." in key:
            continue
        flat = key[: -len(".weight")].removeprefix("text_model.")
        full = "text_model." + flat
        _add(names, "lora_te_" + full.replace(".", "_"), key)
        for alias in (full, flat):
            _add(names, "text_encoder." + alias, key)
            _add(names, "text_encoder." + re.sub(r"self_attn\.(q|k|v|out)_proj$", r"self_attn.to_\1", alias), key)
    return names


# -------------------------------------------------------------------------------------------- math
def add_lora(weight: torch.Tensor, up: torch.Tensor, down: torch.Tensor, mid: torch.Tensor | None,
             factor: float) -> torch.Tensor:
    """A new fp32 tensor weight + factor · up @ down, shaped like `weight` (which is not modified).

    Linear: up [out, r], down [r, in]. Conv (LoCon): down [r, in, kh, kw], up [out, r, 1, 1]; the
    product [out, in·kh·kw] is the kernel flattened. Tucker: mid [r, r, kh, kw] between 1x1 up/down,
    folded into down first. A product with the weight's element count but another shape (a linear
    LoRA on a 1x1 conv) is added to the weight's reshaped view, as ComfyUI reshapes the difference.
    One fused addmm: the result is the only full-size tensor allocated.
    """
    rows, cols = check_fit(up, down, mid, weight.shape)
    up2, down2 = up.float().flatten(1), down.float().flatten(1)
    if mid is not None:
        down2 = torch.einsum("abhw,bi->aihw", mid.float(), down2).flatten(1)
    base = weight.reshape(rows, cols).float()
    return torch.addmm(base, up2.to(base.device), down2.to(base.device), alpha=factor).reshape(weight.shape)


def check_fit(up: torch.Tensor, down: torch.Tensor, mid: torch.Tensor | None,
              shape: torch.Size | tuple[int, ...]) -> tuple[int, int]:
    """(rows, cols) of up @ [mid] @ down; a ValueError when the ranks disagree or it cannot be the weight."""
    rank, cols = down.shape[0], down[0].numel()
    if mid is not None:
        cols *= math.prod(mid.shape[2:])
        if tuple(mid.shape[:2]) != (rank, rank):
            rank = -1
    rows = up.shape[0]
    if up[0].numel() != rank or rows * cols != math.prod(shape):
        parts = " x ".join(str(tuple(t.shape)) for t in (up, mid, down) if t is not None)
        raise ValueError(f"LoRA factors {parts} do not fit the weight {tuple(shape)}")
    return rows, cols


def block_scale(block: LoraBlock, tensors: Mapping[str, torch.Tensor], rank: int,
                config: Mapping[str, Any] | None, module: str) -> float:
    """alpha / rank: the file's `.alpha` first, then the PEFT metadata; neither means alpha = rank."""
    if "alpha" in block.parts:
        return float(tensors[block.parts["alpha"]].float().item()) / rank
    if config:
        alpha, rslora = peft_alpha(config, module)
        if alpha is not None:
            return alpha / (math.sqrt(rank) if rslora else rank)
    return 1.0


# ------------------------------------------------------------------------------------------- merge
@dataclass
class _Target:
    """One module (UNet or text encoder) that a LoRA may patch, and its new fp32 weights so far."""

    component: str            # "unet" | "text_encoder": the file prefix and metadata section
    module: torch.nn.Module
    strength: float
    names: dict[str, str] = field(init=False)
    state: dict[str, torch.Tensor] = field(init=False)
    patched: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = dict(self.module.state_dict())
        self.names = unet_lora_names(self.module) if self.component == "unet" else clip_lora_names(self.module)


def _apply_block(src: StateDictSource, block: LoraBlock, target: _Target, key: str,
                 config: Mapping[str, Any] | None) -> None:
    device = target.state[key].device
    tensors = {k: src.tensor(k, device) for part, k in block.parts.items() if part != "dora_scale"}
    down = tensors[block.parts["down"]]
    module = block.prefix.removeprefix(target.component + ".")  # PEFT patterns name modules in the component
    scale = block_scale(block, tensors, down.shape[0], config, module)
    mid = tensors[block.parts["mid"]] if "mid" in block.parts else None
    current = target.patched.get(key, target.state[key])  # a second block on one weight adds to the first
    target.patched[key] = add_lora(current, tensors[block.parts["up"]], down, mid, target.strength * scale)


def _collect(src: StateDictSource, blocks: Mapping[str, LoraBlock], targets: list[_Target],
             configs: Mapping[str, dict[str, Any]], report: LoraReport) -> None:
    """Match every block to a target weight and add it there (targets with strength 0: matched only)."""
    for block in blocks.values():
        target = next((t for t in targets if block.prefix in t.names), None)
        if target is None or not {"up", "down"} <= set(block.parts):
            report.not_loaded += block.keys()
            continue
        if "dora_scale" in block.parts:  # applying B@A without the magnitude would be silently wrong
            logger.warning("lora block not loaded (DoRA is not supported): %s", block.prefix)
            report.not_loaded += block.keys()
            continue
        if target.strength == 0:
            continue
        key = target.names[block.prefix]
        try:
            _apply_block(src, block, target, key, configs.get(target.component))
        except ValueError as exc:
            logger.warning("lora block not loaded (%s): %s", exc, block.prefix)
            report.not_loaded += block.keys()
            continue
        report.patched.setdefault(target.component, []).append(key)


def merged_module(target: _Target) -> torch.nn.Module:
    """A new module like the target's: the patched weights (back in their dtype) and every other
    tensor shared with the original module, which is never modified."""
    new_state = dict(target.state)
    for key, value in target.patched.items():
        new_state[key] = value.to(target.state[key].dtype)
    return module_like(target.module, new_state)


def load_lora_for_models(model: DiffusionModel | None, clip: ClipModel | None, path: str | os.PathLike,
                         strength_model: float, strength_clip: float
                         ) -> tuple[DiffusionModel | None, ClipModel | None, LoraReport]:
    """Merge the LoRA file at `path` into new MODEL / CLIP objects (ComfyUI's load_lora_for_models).

    An input that is None or whose strength is 0 comes back as the same object. File keys that match
    no weight are logged ("lora key not loaded: <key>") and listed in the report; keys for the text
    encoder are not reported when no CLIP is given (LoraLoaderModelOnly).
    """
    path = Path(path)
    report = LoraReport()
    try:
        with StateDictSource(path) as src:
            blocks, loose = group_keys(src.keys(), path.name)
            targets = []
            if model is not None:
                targets.append(_Target("unet", model.unet, strength_model))
            if clip is not None:
                targets.append(_Target("text_encoder", clip.text_encoder, strength_clip))
            _collect(src, blocks, targets, read_metadata_configs(src.metadata), report)
    except LoraError:
        raise
    except CheckpointError as exc:
        raise LoraError(str(exc) if path.name in str(exc) else f"{path.name}: {exc}") from None
    report.not_loaded += loose
    _report_not_loaded(report, path.name, ignore=() if clip is not None else CLIP_FILE_PREFIXES)
    for target in (t for t in targets if t.patched):
        if target.component == "unet":
            assert model is not None
            model = replace(model.clone(), unet=merged_module(target))
        else:
            assert clip is not None
            clip = replace(clip.clone(), text_encoder=merged_module(target))
    return model, clip, report


def _report_not_loaded(report: LoraReport, name: str, ignore: tuple[str, ...]) -> None:
    kept = [k for k in dict.fromkeys(report.not_loaded) if not k.startswith(ignore)]
    report.not_loaded = kept
    for key in kept:
        logger.warning("lora key not loaded: %s", key)
    if kept and not report.patched:
        logger.warning("%s: none of its LoRA weights fit this model (made for another architecture, e.g. SDXL?)",
                       name)
