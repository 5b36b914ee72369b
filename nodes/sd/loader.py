"""Single-file checkpoints -> MODEL / CLIP / VAE objects, and back (CheckpointSave).

Steps of `load_checkpoint`: (1) open the file (safetensors mapped; pickle only when opted in),
(2) infer family and configs from shapes, (3) read the needed tensors one by one (half -> fp32 on
CPU), (4) map keys to diffusers/transformers names, (5) build modules on the meta device and load
with `assign=True`, so weights are never allocated twice. Nothing is downloaded, ever.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from ..model_types import ClipModel, DiffusionModel, VaeModel
from .arch import infer_architecture, standalone_vae_layout, vae_config
from .convert import (
    CLIP_PREFIX,
    UNET_PREFIX,
    VAE_PREFIX,
    KeyMappingError,
    checkpoint_from_original,
    clip_to_original,
    unet_from_original,
    unet_to_original,
    vae_from_original,
    vae_to_original,
)
from .safetensors_io import CheckpointError, StateDictSource
from .sd2 import OPENCLIP_PREFIX, SD2_PAD, detect_prediction, openclip_to_transformers, transformers_to_openclip

DEVICE_ENV = "DIFFGRAPH_DEVICE"


def default_device() -> torch.device:
    """The compute device: the run's `services["device"]`, else $DIFFGRAPH_DEVICE, else CUDA, else CPU."""
    from engine import current_context

    ctx = current_context()
    if ctx is not None and ctx.services.get("device") is not None:
        return torch.device(ctx.services["device"])
    if os.environ.get(DEVICE_ENV):
        return torch.device(os.environ[DEVICE_ENV])
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_module(factory: Callable[[], torch.nn.Module], state_dict: Mapping[str, torch.Tensor],
                 what: str) -> torch.nn.Module:
    """Construct on the meta device (no allocation, no random init), then adopt the tensors."""
    with torch.device("meta"):
        module = factory()
    result = module.load_state_dict(dict(state_dict), strict=False, assign=True)
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{what}: weights do not fit the inferred architecture (missing "
                              f"{result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]})")
    device = next(iter(state_dict.values())).device
    for owner, name, buf in _buffers(module):
        if buf.is_meta:  # non-persistent buffers are not in any checkpoint; rebuild the known ones
            if name != "position_ids":
                raise CheckpointError(f"{what}: buffer {name!r} has no value in the checkpoint")
            owner.register_buffer(name, torch.arange(buf.shape[-1], device=device).expand(buf.shape),
                                  persistent=False)
    return module.eval().requires_grad_(False)


def _buffers(module: torch.nn.Module) -> list[tuple[torch.nn.Module, str, torch.Tensor]]:
    return [(m, n, b) for m in module.modules() for n, b in m.named_buffers(recurse=False)]


def make_unet(config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    return build_module(lambda: UNet2DConditionModel(**config), state_dict, "UNet")


def make_vae(config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    from diffusers import AutoencoderKL

    return build_module(lambda: AutoencoderKL(**config), state_dict, "VAE")


def make_clip(config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel

    return build_module(lambda: CLIPTextModel(CLIPTextConfig(**config)), state_dict, "CLIP text encoder")


def load_checkpoint(path: str | os.PathLike, device: torch.device | str | None = None
                    ) -> tuple[DiffusionModel, ClipModel, VaeModel]:
    """Load an original-layout SD1/SD2 single-file checkpoint; errors are `CheckpointError`s."""
    ckpt, arch = read_original(path, device)
    try:
        return objects_from_original(ckpt, arch)
    except KeyMappingError as exc:
        raise CheckpointError(f"{Path(path).name}: {exc}") from None


def objects_from_original(ckpt: dict[str, torch.Tensor], arch: Any) -> tuple[DiffusionModel, ClipModel, VaeModel]:
    """MODEL, CLIP and VAE from an original-layout dict (its tensors are adopted, not copied)."""
    from .text import clip_tokenizer

    scheduler = dict(arch.scheduler)
    options: dict[str, Any] = {}
    if arch.family == "sd2":
        scheduler["prediction_type"] = detect_prediction(ckpt, UNET_PREFIX)
        clip_sd = openclip_to_transformers(ckpt)
        unet_sd = unet_from_original({k: v for k, v in ckpt.items() if k.startswith(UNET_PREFIX)})
        vae_sd = vae_from_original({k: v for k, v in ckpt.items() if k.startswith(VAE_PREFIX)})
        options["pad_token"] = SD2_PAD
    else:
        unet_sd, vae_sd, clip_sd = checkpoint_from_original(ckpt)
    ckpt.clear()
    # The SD1 VAE overflows in fp16; it is small, so it always runs in fp32.
    vae_sd = {k: v.float() for k, v in vae_sd.items()}
    model = DiffusionModel(unet=make_unet(arch.unet, unet_sd), scheduler_config=scheduler,
                           family=arch.family, latent_scale=arch.vae["scaling_factor"])
    # SD2's default is the penultimate layer (ComfyUI's SD2 CLIP); CLIPSetLastLayer(-1) selects the last.
    clip = ClipModel(tokenizer=clip_tokenizer(), text_encoder=make_clip(arch.clip, clip_sd),
                     layer_idx=-2 if arch.family == "sd2" else -1, options=options)
    vae = VaeModel(vae=make_vae(arch.vae, vae_sd), scaling_factor=arch.vae["scaling_factor"])
    return model, clip, vae


def read_original(path: str | os.PathLike, device: torch.device | str | None = None
                  ) -> tuple[dict[str, torch.Tensor], Any]:
    """(the SD tensors of a checkpoint in original layout, its Architecture); CheckpointErrors name the file."""
    device = torch.device(device) if device is not None else default_device()
    path = Path(path)
    try:
        with StateDictSource(path) as src:
            arch = infer_architecture(src.shapes())
            ckpt: dict[str, torch.Tensor] = {}
            for prefix in (UNET_PREFIX, VAE_PREFIX, CLIP_PREFIX, OPENCLIP_PREFIX, "v_pred"):
                keys = [k for k in src.keys() if k.startswith(prefix) and not k.endswith("embeddings.position_ids")
                        and not k.startswith(OPENCLIP_PREFIX + "visual.")]
                ckpt.update(src.load(keys, device))
            return ckpt, arch
    except CheckpointError as exc:
        raise CheckpointError(str(exc) if path.name in str(exc) else f"{path.name}: {exc}") from None


def module_like(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A new module of the same class and config as `module`, holding `state_dict` (built on meta)."""
    cls, config = type(module), module.config
    factory = (lambda: cls.from_config(config)) if hasattr(cls, "from_config") else (lambda: cls(config))
    return build_module(factory, state_dict, cls.__name__)


def load_vae(path: str | os.PathLike, device: torch.device | str | None = None) -> VaeModel:
    """A standalone VAE file (original layout like vae-ft-mse-840000, or diffusers layout)."""
    device = torch.device(device) if device is not None else default_device()
    path = Path(path)
    try:
        with StateDictSource(path) as src:
            layout = standalone_vae_layout(src.shapes())
            keys = [k for k in src.keys() if not k.startswith(("loss.", "model_ema."))]
            if layout == "original" and any(k.startswith(VAE_PREFIX) for k in keys):
                keys = [k for k in keys if k.startswith(VAE_PREFIX)]  # a whole checkpoint: its VAE
            sd = {k: src.tensor(k, device).float() for k in keys}
        if layout == "diffusers":
            sd = vae_from_original(vae_to_original(sd, prefix=""))  # normalises shapes, rejects odd keys
        else:
            sd = vae_from_original(sd)
        config = vae_config({k: tuple(v.shape) for k, v in vae_to_original(sd, prefix="").items()})
    except (CheckpointError, KeyMappingError) as exc:
        raise CheckpointError(str(exc) if path.name in str(exc) else f"{path.name}: {exc}") from None
    return VaeModel(vae=make_vae(config, sd), scaling_factor=config["scaling_factor"])


def checkpoint_state_dict(model: DiffusionModel, clip: ClipModel, vae: VaeModel,
                          dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The original single-file layout of three loaded objects, as contiguous CPU tensors."""
    text = (transformers_to_openclip if model.family == "sd2" else clip_to_original)(clip.text_encoder.state_dict())
    ckpt = {**unet_to_original(model.unet.state_dict()), **vae_to_original(vae.vae.state_dict()), **text}
    if model.family == "sd2" and model.prediction_type == "v_prediction":
        ckpt["v_pred"] = torch.zeros(())  # the marker ComfyUI writes and reads
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in ckpt.items()}


def save_file_atomic(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike,
                     metadata: Mapping[str, str] | None = None) -> Path:
    """Write safetensors beside the target, then rename: a reader never sees half a file, and a
    file that is loaded (mapped) while being overwritten keeps its old contents."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=".safetensors", dir=path.parent)
    os.close(fd)
    try:
        # Tensors that share memory (views) must be saved as separate copies.
        save_file({k: v.clone() if v.storage_offset() or not v.is_contiguous() else v
                   for k, v in tensors.items()}, tmp, metadata=dict(metadata or {}))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
