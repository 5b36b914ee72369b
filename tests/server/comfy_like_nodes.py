"""Schema-only stand-ins for ComfyUI's core nodes: the real input names, order and options, no bodies.

They let the converter and validator be tested against real workflows without torch. Input orders
follow ComfyUI's nodes.py (0.3.x); that order is what positional `widgets_values` rely on.
"""
from __future__ import annotations

MAX = 16384
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_sde", "dpmpp_2m", "uni_pc_bh2", "ddim"]
SCHEDULERS = ["normal", "karras", "exponential", "simple"]
UPSCALE = ["nearest-exact", "bilinear", "area", "bicubic", "bislerp"]


def _files(*names: str) -> list[str]:
    return list(names)


def make(name: str, required: dict, returns: tuple = (), optional: dict | None = None,
         output_node: bool = False, hidden: dict | None = None) -> type:
    spec = {"required": required}
    if optional:
        spec["optional"] = optional
    if hidden:
        spec["hidden"] = hidden

    def run(self, **kwargs):
        return tuple(None for _ in returns)

    return type(name, (), {
        "INPUT_TYPES": classmethod(lambda cls: spec), "RETURN_TYPES": returns, "FUNCTION": "run",
        "run": run, "OUTPUT_NODE": output_node, "CATEGORY": "test"})


SEED = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True})
STEPS = ("INT", {"default": 20, "min": 1, "max": 10000})
CFG = ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01})
DIM = ("INT", {"default": 512, "min": 16, "max": MAX, "step": 8})

CLASSES = {
    "CheckpointLoaderSimple": make("CheckpointLoaderSimple", {"ckpt_name": (_files("a.safetensors"),)},
                                   ("MODEL", "CLIP", "VAE")),
    "CLIPSetLastLayer": make("CLIPSetLastLayer", {
        "clip": ("CLIP",), "stop_at_clip_layer": ("INT", {"default": -1, "min": -24, "max": -1})}, ("CLIP",)),
    "CLIPTextEncode": make("CLIPTextEncode", {
        "text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)}, ("CONDITIONING",)),
    "ConditioningCombine": make("ConditioningCombine", {
        "conditioning_1": ("CONDITIONING",), "conditioning_2": ("CONDITIONING",)}, ("CONDITIONING",)),
    "ConditioningSetArea": make("ConditioningSetArea", {
        "conditioning": ("CONDITIONING",),
        "width": ("INT", {"default": 64, "min": 64, "max": MAX, "step": 8}),
        "height": ("INT", {"default": 64, "min": 64, "max": MAX, "step": 8}),
        "x": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "y": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01})}, ("CONDITIONING",)),
    "EmptyLatentImage": make("EmptyLatentImage", {
        "width": DIM, "height": DIM, "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096})}, ("LATENT",)),
    "KSampler": make("KSampler", {
        "model": ("MODEL",), "seed": SEED, "steps": STEPS, "cfg": CFG, "sampler_name": (SAMPLERS,),
        "scheduler": (SCHEDULERS,), "positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
        "latent_image": ("LATENT",), "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0})},
        ("LATENT",)),
    "KSamplerAdvanced": make("KSamplerAdvanced", {
        "model": ("MODEL",), "add_noise": (["enable", "disable"],), "noise_seed": SEED, "steps": STEPS,
        "cfg": CFG, "sampler_name": (SAMPLERS,), "scheduler": (SCHEDULERS,), "positive": ("CONDITIONING",),
        "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
        "start_at_step": ("INT", {"default": 0, "min": 0, "max": 10000}),
        "end_at_step": ("INT", {"default": 10000, "min": 0, "max": 10000}),
        "return_with_leftover_noise": (["disable", "enable"],)}, ("LATENT",)),
    "LatentUpscale": make("LatentUpscale", {
        "samples": ("LATENT",), "upscale_method": (UPSCALE,), "width": DIM, "height": DIM,
        "crop": (["disabled", "center"],)}, ("LATENT",)),
    "LatentUpscaleBy": make("LatentUpscaleBy", {
        "samples": ("LATENT",), "upscale_method": (UPSCALE,),
        "scale_by": ("FLOAT", {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01})}, ("LATENT",)),
    "LatentComposite": make("LatentComposite", {
        "samples_to": ("LATENT",), "samples_from": ("LATENT",),
        "x": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "y": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "feather": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8})}, ("LATENT",)),
    "SaveImage": make("SaveImage", {
        "images": ("IMAGE",), "filename_prefix": ("STRING", {"default": "ComfyUI"})}, (), output_node=True,
        hidden={"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}),
    "VAEDecode": make("VAEDecode", {"samples": ("LATENT",), "vae": ("VAE",)}, ("IMAGE",)),
    "VAEEncode": make("VAEEncode", {"pixels": ("IMAGE",), "vae": ("VAE",)}, ("LATENT",)),
    "VAEEncodeForInpaint": make("VAEEncodeForInpaint", {
        "pixels": ("IMAGE",), "vae": ("VAE",), "mask": ("MASK",),
        "grow_mask_by": ("INT", {"default": 6, "min": 0, "max": 64, "step": 1})}, ("LATENT",)),
    "VAELoader": make("VAELoader", {"vae_name": (_files("v.safetensors"),)}, ("VAE",)),
    "LoadImage": make("LoadImage", {"image": (_files("example.png"), {"image_upload": True})},
                      ("IMAGE", "MASK")),
    "LoraLoader": make("LoraLoader", {
        "model": ("MODEL",), "clip": ("CLIP",), "lora_name": (_files("l.safetensors"),),
        "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}),
        "strength_clip": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01})},
        ("MODEL", "CLIP")),
    "ImagePadForOutpaint": make("ImagePadForOutpaint", {
        "image": ("IMAGE",),
        "left": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "top": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "right": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "bottom": ("INT", {"default": 0, "min": 0, "max": MAX, "step": 8}),
        "feathering": ("INT", {"default": 40, "min": 0, "max": MAX, "step": 1})}, ("IMAGE", "MASK")),
}


def registry():
    from engine import NodeRegistry
    reg = NodeRegistry()
    for name, cls in CLASSES.items():
        reg.register(cls, name)
    return reg
