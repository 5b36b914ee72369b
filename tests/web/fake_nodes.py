"""A fast fake of the built-in text-to-image nodes, under their real names, for the browser tests.

Same inputs, types, categories and widgets as the real nodes, but no model: the "sampler" sleeps a
few milliseconds per step (reporting progress) and the "decoder" draws a coloured disc named by
the prompt, so a whole run takes well under a second. A cfg of 50 or more makes the sampler fail.
"""
from __future__ import annotations

import json
import time

from PIL import Image, ImageDraw
from PIL.PngImagePlugin import PngInfo

from engine import active_paths, current_context

CHECKPOINTS = ["diffgraph-shapes.safetensors", "other-model.safetensors"]
SAMPLERS = ["euler", "euler_ancestral", "ddim", "dpmpp_2m"]
SCHEDULERS = ["normal", "karras", "simple"]
COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 180, 70), "yellow": (230, 210, 40)}
FAIL_CFG = 50.0


class CheckpointLoaderSimple:
    CATEGORY = "loaders"
    DESCRIPTION = "Loads a diffusion model checkpoint."
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")
    OUTPUT_TOOLTIPS = ("The denoising model.", "The text encoder.", "The image autoencoder.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (CHECKPOINTS, {"tooltip": "The checkpoint to load."})}}

    def load(self, ckpt_name):
        return ({"model": ckpt_name}, {"clip": ckpt_name}, {"vae": ckpt_name})


class CLIPTextEncode:
    CATEGORY = "conditioning"
    DESCRIPTION = "Encodes a text prompt with CLIP into conditioning for the sampler."
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True, "tooltip": "The text to encode."}),
                             "clip": ("CLIP", {"tooltip": "The CLIP model."})}}

    def encode(self, text, clip):
        return ({"text": text},)


class EmptyLatentImage:
    CATEGORY = "latent"
    DESCRIPTION = "Creates a batch of empty latent images."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        size = {"min": 16, "max": 16384, "step": 8}
        return {"required": {"width": ("INT", {"default": 512, **size}), "height": ("INT", {"default": 512, **size}),
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": 64})}}

    def generate(self, width, height, batch_size):
        return ({"width": width, "height": height, "batch": batch_size},)


class KSampler:
    CATEGORY = "sampling"
    DESCRIPTION = "Denoises a latent with a model and conditioning."
    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL",),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                             "tooltip": "The random seed."}),
            "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
            "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1}),
            "sampler_name": (SAMPLERS,), "scheduler": (SCHEDULERS,),
            "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise):
        if cfg >= FAIL_CFG:
            raise ValueError(f"cfg {cfg} is too high for the fake sampler")
        ctx = current_context()
        for step in range(steps):
            time.sleep(0.01)
            if ctx is not None:
                ctx.progress(step + 1, steps)
        return ({**latent_image, "text": positive["text"], "seed": seed},)


class VAEDecode:
    CATEGORY = "latent"
    DESCRIPTION = "Decodes latents into images."
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"samples": ("LATENT",), "vae": ("VAE",)}}

    def decode(self, samples, vae):
        words = samples.get("text", "").lower().split()
        colour = next((COLOURS[w] for w in words if w in COLOURS), (150, 150, 150))
        images = []
        for _ in range(samples["batch"]):
            img = Image.new("RGB", (samples["width"], samples["height"]), (245, 245, 245))
            w, h = img.size
            ImageDraw.Draw(img).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=colour)
            images.append(img)
        return (images,)


class SaveImage:
    CATEGORY = "image"
    DESCRIPTION = "Saves images to the output folder with the workflow in the PNG."
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"
    kind = "output"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save(self, images, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        folder = active_paths().directory_by_type(self.kind)
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        for img in images:
            meta = PngInfo()
            if prompt is not None:
                meta.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                meta.add_text(key, json.dumps(value))
            counter = 1 + len(list(folder.glob(f"{filename_prefix}_*_.png")))
            name = f"{filename_prefix}_{counter:05}_.png"
            img.save(folder / name, pnginfo=meta)
            results.append({"filename": name, "subfolder": "", "type": self.kind})
        return {"ui": {"images": results}}


class PreviewImage(SaveImage):
    DESCRIPTION = "Shows images without keeping them."
    kind = "temp"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    def save(self, images, prompt=None, extra_pnginfo=None):
        return super().save(images, "preview", prompt, extra_pnginfo)


class LoadImage:
    CATEGORY = "image"
    DESCRIPTION = "Loads an image from the input folder."
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        folder = active_paths().input
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg")) if folder.is_dir() else []
        return {"required": {"image": (names or [""], {"image_upload": True})}}

    def load(self, image):
        return ([Image.open(active_paths().input / image).convert("RGB")],)


NODE_CLASS_MAPPINGS = {c.__name__: c for c in (CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, KSampler,
                                                VAEDecode, SaveImage, PreviewImage, LoadImage)}
NODE_DISPLAY_NAME_MAPPINGS = {"CheckpointLoaderSimple": "Load Checkpoint", "CLIPTextEncode": "CLIP Text Encode (Prompt)",
                              "EmptyLatentImage": "Empty Latent Image", "KSampler": "KSampler", "VAEDecode": "VAE Decode",
                              "SaveImage": "Save Image", "PreviewImage": "Preview Image",
                              "LoadImage": "Load Image"}
