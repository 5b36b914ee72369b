"""LoRA nodes with ComfyUI's names, inputs and defaults: LoraLoader (MODEL + CLIP) and
LoraLoaderModelOnly. Files come from models/loras through `engine.active_paths()`; the merge itself
(key formats, alpha / rank, conv LoCon) lives in nodes/sd/lora.py.
"""
from __future__ import annotations

from typing import Any

from engine import CLIP, COMBO, FLOAT, MODEL, Input, Output, active_paths, node

from .loader_nodes import file_fingerprint, model_path
from .model_types import ClipModel, DiffusionModel
from .sd.lora import load_lora_for_models

DESCRIPTION = ("LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are "
               "denoised such as applying styles. Multiple LoRA nodes can be linked together.")
MODEL_IN = Input("model", MODEL, tooltip="The diffusion model the LoRA will be applied to.")
LORA_NAME = Input("lora_name", COMBO, options=lambda: active_paths().get_filename_list("loras"),
                  tooltip="The name of the LoRA.")
STRENGTH_MODEL = Input("strength_model", FLOAT, default=1.0, min=-100.0, max=100.0, step=0.01,
                       tooltip="How strongly to modify the diffusion model. This value can be negative.")
STRENGTH_CLIP = Input("strength_clip", FLOAT, default=1.0, min=-100.0, max=100.0, step=0.01,
                      tooltip="How strongly to modify the CLIP model. This value can be negative.")
MODEL_OUT = Output(MODEL, "MODEL", "The modified diffusion model.")


@node("LoraLoader", category="loaders", display_name="Load LoRA", description=DESCRIPTION)
class LoraLoader:
    """Merges a LoRA (kohya, LoCon or diffusers/PEFT file) into the diffusion model and CLIP."""

    inputs = (MODEL_IN, Input("clip", CLIP, tooltip="The CLIP model the LoRA will be applied to."),
              LORA_NAME, STRENGTH_MODEL, STRENGTH_CLIP)
    outputs = (MODEL_OUT, Output(CLIP, "CLIP", "The modified CLIP model."))

    def run(self, model: DiffusionModel, clip: ClipModel, lora_name: str, strength_model: float,
            strength_clip: float) -> tuple[DiffusionModel, ClipModel]:
        if strength_model == 0 and strength_clip == 0:
            return model, clip  # as ComfyUI: the file is not even read
        new_model, new_clip, _report = load_lora_for_models(model, clip, model_path("loras", lora_name),
                                                            strength_model, strength_clip)
        assert new_model is not None and new_clip is not None
        return new_model, new_clip

    @classmethod
    def IS_CHANGED(cls, lora_name: str, **_: Any) -> Any:  # noqa: N802 - ComfyUI's protocol name
        return file_fingerprint("loras", lora_name)


@node("LoraLoaderModelOnly", category="loaders", display_name="LoraLoaderModelOnly", description=DESCRIPTION)
class LoraLoaderModelOnly:
    """Merges a LoRA into the diffusion model only (its text-encoder weights are ignored)."""

    inputs = (MODEL_IN, LORA_NAME, STRENGTH_MODEL)
    outputs = (MODEL_OUT,)

    def run(self, model: DiffusionModel, lora_name: str, strength_model: float) -> tuple[DiffusionModel]:
        if strength_model == 0:
            return (model,)
        new_model, _clip, _report = load_lora_for_models(model, None, model_path("loras", lora_name),
                                                         strength_model, 0.0)
        assert new_model is not None
        return (new_model,)

    @classmethod
    def IS_CHANGED(cls, lora_name: str, **_: Any) -> Any:  # noqa: N802
        return file_fingerprint("loras", lora_name)


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (LoraLoader, LoraLoaderModelOnly)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
