"""Image nodes: LoadImage, SaveImage, PreviewImage, ImageScale, ImageScaleBy, ImagePadForOutpaint.

IMAGE is `[B,H,W,C]` float 0..1 and MASK `[B,H,W]`, as in ComfyUI. Saved PNGs carry the `prompt`
and `extra_pnginfo` (`workflow`) text chunks, so ComfyUI can load them back.
"""
from __future__ import annotations

import random
import string
from typing import Any

import torch

from engine import COMBO, FLOAT, IMAGE, INT, MASK, STRING, Input, Output, UnsafePathError, active_paths, node

from .sd.files import file_sha256, list_images, load_image_file, save_images
from .sd.resize import CROP_METHODS, IMAGE_METHODS, common_upscale, outpaint_pad

MAX_RESOLUTION = 16384


@node("LoadImage", category="image", display_name="Load Image")
class LoadImage:
    """Loads an image from the input folder; its alpha channel becomes the MASK (1 = transparent)."""

    inputs = (Input("image", COMBO, options=lambda: list_images(active_paths().input),
                    extra={"image_upload": True}),)
    outputs = (Output(IMAGE, "IMAGE"), Output(MASK, "MASK"))

    def run(self, image: str) -> tuple[torch.Tensor, torch.Tensor]:
        return load_image_file(active_paths().annotated_path(image))

    @classmethod
    def IS_CHANGED(cls, image: str) -> str:  # noqa: N802 - ComfyUI's protocol name
        return file_sha256(active_paths().annotated_path(image))

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:  # noqa: N802
        try:
            ok = active_paths().annotated_path(image).is_file()
        except (UnsafePathError, TypeError):
            ok = False
        return True if ok else f"Invalid image file: {image}"


@node("SaveImage", category="image", display_name="Save Image", output_node=True,
      hidden=("prompt", "extra_pnginfo"))
class SaveImage:
    """Saves images to the output folder as `{prefix}_{counter:05}_.png` with the workflow embedded."""

    inputs = (Input("images", IMAGE, tooltip="The images to save."),
              Input("filename_prefix", STRING, default="ComfyUI",
                    tooltip="The prefix for the file to save. This may include formatting information "
                            "such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."))
    outputs = ()
    folder_type = "output"
    compress_level = 4

    def run(self, images: torch.Tensor, filename_prefix: str = "ComfyUI", prompt: Any = None,
            extra_pnginfo: Any = None) -> dict[str, Any]:
        root = active_paths().directory_by_type(self.folder_type)
        results = save_images(images, root, filename_prefix, self.folder_type, prompt, extra_pnginfo,
                              self.compress_level)
        return {"ui": {"images": results}}


@node("PreviewImage", category="image", display_name="Preview Image", output_node=True,
      hidden=("prompt", "extra_pnginfo"))
class PreviewImage(SaveImage):
    """Saves images to the temp folder for the UI to show (ComfyUI_temp_xxxxx prefix)."""

    inputs = (Input("images", IMAGE),)
    folder_type = "temp"
    compress_level = 1

    def run(self, images: torch.Tensor, prompt: Any = None, extra_pnginfo: Any = None) -> dict[str, Any]:
        suffix = "".join(random.choice(string.ascii_lowercase) for _ in range(5))
        return super().run(images, "ComfyUI_temp_" + suffix, prompt, extra_pnginfo)


@node("ImageScale", category="image/upscaling", display_name="Upscale Image")
class ImageScale:
    """Resizes images to width x height (0 keeps the aspect ratio from the other side)."""

    inputs = (Input("image", IMAGE), Input("upscale_method", COMBO, options=IMAGE_METHODS, default="nearest-exact"),
              Input("width", INT, default=512, min=0, max=MAX_RESOLUTION, step=1),
              Input("height", INT, default=512, min=0, max=MAX_RESOLUTION, step=1),
              Input("crop", COMBO, options=CROP_METHODS, default="disabled"))
    outputs = (Output(IMAGE, "IMAGE"),)

    def run(self, image: torch.Tensor, upscale_method: str, width: int, height: int, crop: str) -> tuple[torch.Tensor]:
        if width == 0 and height == 0:
            return (image,)
        samples = image.movedim(-1, 1)
        if width == 0:
            width = max(1, round(samples.shape[3] * height / samples.shape[2]))
        elif height == 0:
            height = max(1, round(samples.shape[2] * width / samples.shape[3]))
        return (common_upscale(samples, width, height, upscale_method, crop).movedim(1, -1),)


@node("ImageScaleBy", category="image/upscaling", display_name="Upscale Image By")
class ImageScaleBy:
    """Resizes images by a factor."""

    inputs = (Input("image", IMAGE), Input("upscale_method", COMBO, options=IMAGE_METHODS, default="nearest-exact"),
              Input("scale_by", FLOAT, default=1.0, min=0.01, max=8.0, step=0.01))
    outputs = (Output(IMAGE, "IMAGE"),)

    def run(self, image: torch.Tensor, upscale_method: str, scale_by: float) -> tuple[torch.Tensor]:
        samples = image.movedim(-1, 1)
        width, height = round(samples.shape[3] * scale_by), round(samples.shape[2] * scale_by)
        return (common_upscale(samples, width, height, upscale_method, "disabled").movedim(1, -1),)


@node("ImagePadForOutpaint", category="image", display_name="Pad Image for Outpainting")
class ImagePadForOutpaint:
    """Pads images with grey for outpainting; the MASK marks the new area, feathered into the image."""

    inputs = (Input("image", IMAGE),
              Input("left", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("top", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("right", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("bottom", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("feathering", INT, default=40, min=0, max=MAX_RESOLUTION, step=1))
    outputs = (Output(IMAGE, "IMAGE"), Output(MASK, "MASK"))

    def run(self, image: torch.Tensor, left: int, top: int, right: int, bottom: int,
            feathering: int) -> tuple[torch.Tensor, torch.Tensor]:
        return outpaint_pad(image, left, top, right, bottom, feathering)


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (LoadImage, SaveImage, PreviewImage, ImageScale,
                                                       ImageScaleBy, ImagePadForOutpaint)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
