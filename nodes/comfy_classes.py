"""ComfyUI's method and attribute names on our built-in node classes, for packs that `import nodes`.

Packs call `nodes.CheckpointLoaderSimple().load_checkpoint(name)` or subclass a core node and override
its ComfyUI method. Each class here gets its ComfyUI method as the same function as its `run` (so the
signature, `ctx` included, is unchanged) and FUNCTION names it, so a subclass's override is what runs.
"""
from __future__ import annotations

from typing import Any

# ComfyUI class name -> ComfyUI FUNCTION name (from ComfyUI's nodes.py).
COMFY_FUNCTIONS = {
    "CheckpointLoaderSimple": "load_checkpoint", "VAELoader": "load_vae", "CLIPSetLastLayer": "set_last_layer",
    "CheckpointSave": "save", "CLIPTextEncode": "encode", "ConditioningCombine": "combine",
    "ConditioningSetArea": "append", "ConditioningZeroOut": "zero_out", "EmptyLatentImage": "generate",
    "LatentUpscale": "upscale", "LatentUpscaleBy": "upscale", "LatentComposite": "composite",
    "VAEDecode": "decode", "VAEDecodeTiled": "decode", "VAEEncode": "encode", "VAEEncodeTiled": "encode",
    "VAEEncodeForInpaint": "encode", "KSampler": "sample", "KSamplerAdvanced": "sample",
    "LoraLoader": "load_lora", "LoraLoaderModelOnly": "load_lora_model_only", "LoadImage": "load_image",
    "SaveImage": "save_images", "PreviewImage": "save_images", "ImageScale": "upscale",
    "ImageScaleBy": "upscale", "ImagePadForOutpaint": "expand_image",
    "RebatchImages": "rebatch", "RebatchLatents": "rebatch", "ImageBatch": "batch", "EmptyImage": "generate",
    "SolidMask": "solid", "ImageInvert": "invert", "LatentFromBatch": "frombatch", "RepeatLatentBatch": "repeat",
}


def _output_dir(self: Any) -> str:
    from engine import active_paths

    return active_paths().directory_by_type(self.folder_type)


def apply_comfy_names(classes: dict[str, type]) -> None:
    """Give each built-in class in `classes` its ComfyUI method name and FUNCTION (idempotent)."""
    for name, method in COMFY_FUNCTIONS.items():
        cls = classes.get(name)
        if cls is None or "run" not in vars(cls):
            continue
        setattr(cls, method, vars(cls)["run"])
        cls.FUNCTION = method
    for name in ("ImageScale", "ImageScaleBy"):
        if name in classes:
            classes[name].upscale_methods = list(classes[name].INPUT_TYPES()["required"]["upscale_method"][0])
    save = classes.get("SaveImage")
    if save is not None:
        # ComfyUI's SaveImage/PreviewImage instance attributes; output_dir follows our folder paths.
        save.output_dir = property(_output_dir)
        save.type = property(lambda self: self.folder_type)
        save.prefix_append = ""
    if "PreviewImage" in classes:
        classes["PreviewImage"].prefix_append = "_temp_"
