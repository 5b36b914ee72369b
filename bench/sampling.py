"""Benchmark: seconds per sampling step of a full SD1.5-size UNet (random weights), ours vs diffusers.

Batch 1 with classifier-free guidance (one UNet call on a batch of 2 per step), fp32, at 512x512 and
256x256. Variants: KSampler (euler/normal, our sigma-space loop), KSamplerDiffusers (EulerDiscreteScheduler
through our adapter) and diffusers' StableDiffusionPipeline with the same UNet, scheduler, embeddings
and noise. Runs are interleaved; the minimum (least disturbed by other processes on a shared CPU) and
the median of the repeats are reported, the ratio from the minima, and the time per step spent outside
the UNet (the only part that differs: the UNet is one shared module), which contention hardly blurs.
Usage: python bench/sampling.py [--sizes 256 512] [--steps 4] [--repeats 3] [--device cpu] [--fp16]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SD15_UNET = dict(act_fn="silu", attention_head_dim=8, block_out_channels=[320, 640, 1280, 1280],
                 center_input_sample=False, cross_attention_dim=768,
                 down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], downsample_padding=1,
                 flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=2, mid_block_scale_factor=1,
                 norm_eps=1e-5, norm_num_groups=32, out_channels=4, sample_size=64,
                 up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3)
CFG, SEED = 7.5, 0


def build(device: str, dtype: torch.dtype):
    """(MODEL, StableDiffusionPipeline, positive, negative) sharing one random SD1.5 UNet."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    from nodes.model_types import DiffusionModel
    from nodes.sampling import SD1_SCHEDULER_CONFIG
    from nodes.sd.tiny import TINY_VAE

    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**SD15_UNET).eval().requires_grad_(False).to(device, dtype)
    model = DiffusionModel(unet=unet, scheduler_config=dict(SD1_SCHEDULER_CONFIG))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = EulerDiscreteScheduler.from_config(SD1_SCHEDULER_CONFIG)
        vae = AutoencoderKL(**TINY_VAE)  # only its scale factor (8) is read: output_type="latent"
        pipe = StableDiffusionPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler,
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    gen = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 768, generator=gen), {}]]
    negative = [[torch.randn(1, 77, 768, generator=gen), {}]]
    return model, pipe, positive, negative


class UNetTimer:
    """Accumulates the wall time spent inside the UNet's forward."""

    def __init__(self, unet: torch.nn.Module):
        self.seconds, self.forward = 0.0, unet.forward
        unet.forward = self

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.forward(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def run_variant(variant: str, parts, size: int, steps: int) -> float:
    """Wall seconds of one sampling run (no text encoding, no VAE decode)."""
    from nodes.sampling import prepare_noise
    from nodes.sampling_nodes import KSampler, KSamplerDiffusers

    model, pipe, positive, negative = parts
    latent = {"samples": torch.zeros(1, 4, size // 8, size // 8)}
    start = time.perf_counter()
    if variant == "ours: KSampler euler/normal":
        KSampler().run(model, SEED, steps, CFG, "euler", "normal", positive, negative, latent, 1.0)
    elif variant == "ours: KSamplerDiffusers Euler":
        KSamplerDiffusers().run(model, SEED, steps, CFG, "EulerDiscreteScheduler", positive, negative, latent, 1.0,
                                "default", "default", "default", 0, 0.0, "")
    else:
        dtype = model.dtype
        with torch.inference_mode():
            pipe(prompt_embeds=positive[0][0].to(model.device, dtype),
                 negative_prompt_embeds=negative[0][0].to(model.device, dtype), height=size, width=size,
                 latents=prepare_noise(latent["samples"], SEED).to(model.device, dtype),
                 num_inference_steps=steps, guidance_scale=CFG, output_type="latent")
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


VARIANTS = ("ours: KSampler euler/normal", "ours: KSamplerDiffusers Euler", "diffusers StableDiffusionPipeline")


def bench_size(parts, size: int, steps: int, repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-step wall seconds and per-step seconds outside the UNet, by variant."""
    for variant in VARIANTS:  # warm-up: allocator, SDPA kernels, first-call overheads
        run_variant(variant, parts, size, 1)
    timer = parts[0].unet.forward
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    outside: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            timer.seconds = 0.0
            total = run_variant(variant, parts, size, steps)
            times[variant].append(total / steps)
            outside[variant].append((total - timer.seconds) / steps)
    return times, outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fp16", action="store_true", help="half-precision UNet (GPU)")
    args = parser.parse_args()
    dtype = torch.float16 if args.fp16 else torch.float32
    print(f"device {args.device}, dtype {dtype}, torch threads {torch.get_num_threads()}, "
          f"steps {args.steps}, repeats {args.repeats} (interleaved runs)")
    t0 = time.perf_counter()
    parts = build(args.device, dtype)
    UNetTimer(parts[0].unet)
    print(f"built SD1.5 UNet ({sum(p.numel() for p in parts[0].unet.parameters()):,} params) "
          f"in {time.perf_counter() - t0:.1f} s")
    for size in args.sizes:
        times, outside = bench_size(parts, size, args.steps, args.repeats)
        reference = min(times["diffusers StableDiffusionPipeline"])
        for variant, per_step in times.items():
            best, median = min(per_step), statistics.median(per_step)
            print(f"{size}x{size}  {variant:36s} min {best:8.3f} s/step ({1 / best:6.2f} it/s)  "
                  f"median {median:8.3f} s/step  ratio vs diffusers (min) {best / reference:.3f}  "
                  f"outside the UNet {1000 * statistics.median(outside[variant]):.2f} ms/step", flush=True)


if __name__ == "__main__":
    main()
