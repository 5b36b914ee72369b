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


# --- More of ComfyUI's core nodes, so its example workflows open and run: the real input names, order
# and options (what positional widgets_values rely on; as tests/server/comfy_like_nodes.py), fast bodies.

UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]
MAX_SIZE = 16384
SIZE8 = {"default": 0, "min": 0, "max": MAX_SIZE, "step": 8}


def _fake(name: str, category: str, required: dict, returns: tuple, body, description: str = "") -> type:
    """A node class with ComfyUI's schema for `name` whose function is `body(**inputs)`."""
    return type(name, (), {
        "CATEGORY": category, "DESCRIPTION": description, "RETURN_TYPES": returns, "FUNCTION": "run",
        "INPUT_TYPES": classmethod(lambda cls: {"required": required}),
        "run": lambda self, **kw: body(**kw)})


def _sample_advanced(model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler, positive, negative,
                     latent_image, start_at_step, end_at_step, return_with_leftover_noise):
    ctx = current_context()
    last = min(steps, end_at_step)
    for step in range(start_at_step, last):
        time.sleep(0.01)
        if ctx is not None:
            ctx.progress(step + 1, last)
    return ({**latent_image, "text": positive["text"], "seed": noise_seed},)


def _scaled(samples, width, height):
    return ({**samples, "width": width, "height": height},)


def _encode(pixels, vae, **_):
    return ({"width": pixels[0].width, "height": pixels[0].height, "batch": len(pixels)},)


def _pad(image, left, top, right, bottom, feathering):
    padded = []
    for img in image:
        canvas = Image.new("RGB", (img.width + left + right, img.height + top + bottom), (0, 0, 0))
        canvas.paste(img, (left, top))
        padded.append(canvas)
    return (padded, None)


_MORE = [
    _fake("KSamplerAdvanced", "sampling", {
        "model": ("MODEL",), "add_noise": (["enable", "disable"],),
        "noise_seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True}),
        "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
        "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
        "sampler_name": (SAMPLERS,), "scheduler": (SCHEDULERS,),
        "positive": ("CONDITIONING",), "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
        "start_at_step": ("INT", {"default": 0, "min": 0, "max": 10000}),
        "end_at_step": ("INT", {"default": 10000, "min": 0, "max": 10000}),
        "return_with_leftover_noise": (["disable", "enable"],)}, ("LATENT",), _sample_advanced,
        "Denoises a latent over a range of steps."),
    _fake("CLIPSetLastLayer", "conditioning", {
        "clip": ("CLIP",), "stop_at_clip_layer": ("INT", {"default": -1, "min": -24, "max": -1, "step": 1})},
        ("CLIP",), lambda clip, stop_at_clip_layer: (clip,)),
    _fake("ConditioningCombine", "conditioning", {"conditioning_1": ("CONDITIONING",), "conditioning_2": ("CONDITIONING",)},
          ("CONDITIONING",), lambda conditioning_1, conditioning_2:
          ({"text": f"{conditioning_1['text']} {conditioning_2['text']}"},)),
    _fake("ConditioningSetArea", "conditioning", {
        "conditioning": ("CONDITIONING",),
        "width": ("INT", {**SIZE8, "default": 64, "min": 64}), "height": ("INT", {**SIZE8, "default": 64, "min": 64}),
        "x": ("INT", SIZE8), "y": ("INT", SIZE8),
        "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})},
        ("CONDITIONING",), lambda conditioning, **_: (conditioning,)),
    _fake("LatentUpscale", "latent", {
        "samples": ("LATENT",), "upscale_method": (UPSCALE_METHODS,),
        "width": ("INT", {**SIZE8, "default": 512}), "height": ("INT", {**SIZE8, "default": 512}),
        "crop": (["disabled", "center"],)}, ("LATENT",),
        lambda samples, upscale_method, width, height, crop: _scaled(samples, width, height)),
    _fake("LatentUpscaleBy", "latent", {
        "samples": ("LATENT",), "upscale_method": (UPSCALE_METHODS,),
        "scale_by": ("FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01})}, ("LATENT",),
        lambda samples, upscale_method, scale_by:
        _scaled(samples, round(samples["width"] * scale_by), round(samples["height"] * scale_by))),
    _fake("LatentComposite", "latent", {
        "samples_to": ("LATENT",), "samples_from": ("LATENT",), "x": ("INT", SIZE8), "y": ("INT", SIZE8),
        "feather": ("INT", SIZE8)}, ("LATENT",), lambda samples_to, samples_from, **_: (samples_to,)),
    _fake("VAEEncode", "latent", {"pixels": ("IMAGE",), "vae": ("VAE",)}, ("LATENT",), _encode),
    _fake("VAEEncodeForInpaint", "latent/inpaint", {
        "pixels": ("IMAGE",), "vae": ("VAE",), "mask": ("MASK",),
        "grow_mask_by": ("INT", {"default": 6, "min": 0, "max": 64, "step": 1})}, ("LATENT",), _encode),
    _fake("VAELoader", "loaders", {"vae_name": (["diffgraph-vae.safetensors"],)}, ("VAE",),
          lambda vae_name: ({"vae": vae_name},)),
    _fake("LoraLoader", "loaders", {
        "model": ("MODEL",), "clip": ("CLIP",), "lora_name": (["diffgraph-lora.safetensors"],),
        "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}),
        "strength_clip": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01})},
        ("MODEL", "CLIP"), lambda model, clip, **_: (model, clip)),
    _fake("ImagePadForOutpaint", "image", {
        "image": ("IMAGE",), "left": ("INT", SIZE8), "top": ("INT", SIZE8), "right": ("INT", SIZE8),
        "bottom": ("INT", SIZE8), "feathering": ("INT", {"default": 40, "min": 0, "max": MAX_SIZE, "step": 1})},
        ("IMAGE", "MASK"), _pad),
]
NODE_CLASS_MAPPINGS.update({c.__name__: c for c in _MORE})
NODE_DISPLAY_NAME_MAPPINGS.update({
    "KSamplerAdvanced": "KSampler (Advanced)", "CLIPSetLastLayer": "CLIP Set Last Layer",
    "ConditioningCombine": "Conditioning (Combine)", "ConditioningSetArea": "Conditioning (Set Area)",
    "LatentUpscale": "Upscale Latent", "LatentUpscaleBy": "Upscale Latent By", "LatentComposite": "Latent Composite",
    "VAEEncode": "VAE Encode", "VAEEncodeForInpaint": "VAE Encode (for Inpainting)", "VAELoader": "Load VAE",
    "LoraLoader": "Load LoRA", "ImagePadForOutpaint": "Pad Image for Outpainting"})
