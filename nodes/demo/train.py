"""Seeded training of the demo text-to-image model: the VAE first, then UNet + CLIP on its latents.

1. Train the AutoencoderKL on freshly drawn pictures (L1 + a small KL term).
2. Rescale its latent channels so that std(latent) * 0.18215 == 1, as SD1 samplers expect.
3. Encode a fixed set of training pictures once (mean and std of each latent).
4. Train the UNet and the text encoder together on epsilon prediction (SD1 noise schedule), with
   10% empty prompts for classifier-free guidance, and EMA weights (diffusers EMAModel, warm-up).
5. Save raw and EMA checkpoints in the original single-file layout, plus snapshot grids/checkpoints.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from nodes.demo import dataset, models, sample

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Every knob of a run; the same config and seed give the same weights (on the same machine)."""

    out_dir: str = "artifacts/demo-train"
    seed: int = 0
    threads: int = 1  # measured: on a shared 2-core CPU, 2 threads ran 2-3x slower per step than 1
    vae_steps: int = 2000
    vae_batch: int = 16
    vae_lr: float = 1e-3
    kl_weight: float = 1e-6
    latents: int = 16000
    unet_steps: int = 3000
    unet_batch: int = 32
    unet_lr: float = 5e-4
    train_text_encoder: bool = True
    uncond_prob: float = 0.1
    offset_noise: float = 0.25  # see _unet_step
    ema_decay: float = 0.999
    ema_power: float = 0.75
    snapshots: int = 4
    eval_prompts: int = 32
    skip_vae: bool = False  # reuse out_dir/vae.pt from an earlier run
    caption_variety: bool = True  # varied phrasings (dataset.random_caption); False: the one template
    init_from: str = ""  # start from this original-layout checkpoint (UNet, VAE, text encoder); no VAE stage


def _lr_factor(step: int, total: int, warmup: int = 50) -> float:
    """Linear warm-up, then cosine decay to 10%."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """[N, H, W, 3] 0..1 -> [N, 3, H, W] -1..1."""
    return torch.from_numpy(images).permute(0, 3, 1, 2) * 2 - 1


def train_vae(cfg: TrainConfig, vae: Any, rng: random.Random) -> float:
    """Step 1: fit the autoencoder; returns the final smoothed loss."""
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg.vae_steps))
    smooth = None
    bar = tqdm(range(cfg.vae_steps), desc="vae", mininterval=5)
    for _ in bar:
        x = _to_tensor(dataset.make_batch(rng, cfg.vae_batch, models.RESOLUTION)[0])
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        loss = (recon - x).abs().mean() + cfg.kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        bar.set_postfix(loss=f"{smooth:.4f}", refresh=False)
    vae.eval()
    return float(smooth or 0.0)


@torch.no_grad()
def normalise_latents(vae: Any, images: torch.Tensor) -> float:
    """Step 2: scale the latent space (exactly, through quant_conv/post_quant_conv) to unit std * 1/0.18215."""
    mean = vae.encode(images).latent_dist.mean
    gain = 1.0 / (models.SCALING_FACTOR * mean.std().item())
    channels = vae.config.latent_channels
    vae.quant_conv.weight[:channels] *= gain
    vae.quant_conv.bias[:channels] *= gain
    vae.quant_conv.bias[channels:] += 2 * math.log(gain)  # log-variance of the scaled latent
    vae.post_quant_conv.weight /= gain
    return gain


@torch.no_grad()
def encode_dataset(cfg: TrainConfig, vae: Any, tokenizer: Any, rng: random.Random) -> dict[str, torch.Tensor]:
    """Step 3: render and encode `cfg.latents` training scenes once."""
    means, stds, ids, all_scenes = [], [], [], []
    for start in tqdm(range(0, cfg.latents, 200), desc="encode", mininterval=5):
        images, scenes = dataset.make_batch(rng, min(200, cfg.latents - start), models.RESOLUTION)
        dist = vae.encode(_to_tensor(images)).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
        ids.append(models.token_ids(tokenizer, [s.caption for s in scenes]))
        all_scenes.extend(scenes)
    return {"mean": torch.cat(means), "std": torch.cat(stds), "ids": torch.cat(ids), "scenes": all_scenes}


def _caption_ids(cfg: TrainConfig, data: dict, idx: torch.Tensor, tokenizer: Any,
                 rng: random.Random) -> torch.Tensor:
    """Token ids for a batch: a fresh varied caption per picture and step, or the cached template ones."""
    if not cfg.caption_variety:
        return data["ids"][idx].clone()
    captions = [dataset.random_caption(data["scenes"][i], rng) for i in idx.tolist()]
    return models.token_ids(tokenizer, captions)


def _unet_step(cfg: TrainConfig, unet: Any, clip: Any, data: dict, empty_ids: torch.Tensor,
               noise_sched: Any, gen: torch.Generator, tokenizer: Any = None,
               caption_rng: random.Random | None = None) -> torch.Tensor:
    """One epsilon-prediction loss on a random batch of cached latents."""
    idx = torch.randint(0, data["mean"].shape[0], (cfg.unet_batch,), generator=gen)
    latents = data["mean"][idx] + data["std"][idx] * torch.randn(data["mean"][idx].shape, generator=gen)
    latents = latents * models.SCALING_FACTOR
    ids = _caption_ids(cfg, data, idx, tokenizer, caption_rng or random.Random(0))
    drop = torch.rand(cfg.unet_batch, generator=gen) < cfg.uncond_prob
    ids[drop] = empty_ids
    # Offset noise: SD1's schedule leaves 7% of the picture in x_T at t=999, and a flat background is
    # almost all DC. Without a random per-channel offset the model learned to read the background
    # colour from the noise instead of the prompt (measured: background at chance at step 1000).
    noise = torch.randn(latents.shape, generator=gen)
    noise = noise + cfg.offset_noise * torch.randn(*latents.shape[:2], 1, 1, generator=gen)
    t = torch.randint(0, noise_sched.config.num_train_timesteps, (cfg.unet_batch,), generator=gen)
    noisy = noise_sched.add_noise(latents, noise, t)
    context = clip(ids).last_hidden_state
    return torch.nn.functional.mse_loss(unet(noisy, t, context).sample, noise)


def train_unet(cfg: TrainConfig, unet: Any, clip: Any, vae: Any, tokenizer: Any, data: dict) -> dict:
    """Step 4: UNet (+ text encoder) with EMA; snapshots along the way. Returns the EMA model object."""
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    noise_sched = DDPMScheduler(**models.SCHEDULE)
    clip.requires_grad_(cfg.train_text_encoder)
    params = list(unet.parameters()) + (list(clip.parameters()) if cfg.train_text_encoder else [])
    ema = EMAModel(params, decay=cfg.ema_decay, use_ema_warmup=True, inv_gamma=1.0, power=cfg.ema_power)
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg.unet_steps))
    empty_ids = models.token_ids(tokenizer, [""])[0]
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    caption_rng = random.Random(cfg.seed + 3)
    every = max(1, cfg.unet_steps // max(1, cfg.snapshots))
    smooth, history = None, []
    bar = tqdm(range(1, cfg.unet_steps + 1), desc="unet", mininterval=5)
    for step in bar:
        unet.train()
        clip.train(cfg.train_text_encoder)
        loss = _unet_step(cfg, unet, clip, data, empty_ids, noise_sched, gen, tokenizer, caption_rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        ema.step(params)
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        bar.set_postfix(loss=f"{smooth:.4f}", ema=f"{ema.cur_decay_value:.4f}", refresh=False)
        if step % every == 0 or step == cfg.unet_steps:
            history.append(snapshot(cfg, step, unet, clip, vae, tokenizer, ema, params, smooth))
    return {"ema": ema, "params": params, "history": history}


def snapshot(cfg: TrainConfig, step: int, unet: Any, clip: Any, vae: Any, tokenizer: Any, ema: Any,
             params: list, loss: float) -> dict:
    """Swap in the EMA weights, write a held-out sample grid and checkpoint, score it, swap back."""
    folder = Path(cfg.out_dir) / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    ema.store(params)
    ema.copy_to(params)
    unet.eval()
    clip.eval()
    entry = {"step": step, "loss": round(loss, 5)}
    for split in dataset.EVAL_SPLITS:
        pairs = dataset.evaluation_prompts(split, cfg.eval_prompts, seed=cfg.seed)
        scenes = [p[0] for p in pairs]
        images = sample.sample_images(unet, vae, clip, tokenizer, [p[1] for p in pairs], seed=cfg.seed)
        if split == dataset.EVAL_SPLITS[1]:
            sample.grid(images).save(folder / f"step{step:05d}.png")
        entry.update({f"{split}/{k}": round(v, 3) for k, v in sample.score(images, scenes).items()})
    models.save_original_checkpoint(folder / f"step{step:05d}-ema.safetensors", unet, vae, clip)
    ema.restore(params)
    tqdm.write(json.dumps(entry))
    return entry


def load_original(path: str | Path, unet: Any, vae: Any, clip: Any) -> None:
    """Load an original-layout checkpoint (e.g. the shipped model) into the three fresh modules, fp32."""
    from safetensors.torch import load_file

    from nodes.sd.convert import checkpoint_from_original

    unet_sd, vae_sd, clip_sd = checkpoint_from_original(load_file(str(path)))
    for module, sd in ((unet, unet_sd), (vae, vae_sd), (clip, clip_sd)):
        missing, unexpected = module.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(f"{path}: does not fit the demo architecture (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    vae.eval()


def run(cfg: TrainConfig) -> dict:
    """The whole recipe (steps 1-5); returns a summary dict that is also written as summary.json."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rng = random.Random(cfg.seed)
    unet, vae, clip = models.build_models(cfg.seed)
    tokenizer = models.load_tokenizer()
    vae_path = out / "vae.pt"
    if cfg.init_from:
        load_original(cfg.init_from, unet, vae, clip)
        vae_loss = float("nan")
    elif cfg.skip_vae and vae_path.exists():
        vae.load_state_dict(torch.load(vae_path, weights_only=True))
        vae.eval()
        vae_loss = float("nan")
    else:
        vae_loss = train_vae(cfg, vae, rng)
        normalise_latents(vae, _to_tensor(dataset.make_batch(rng, 256, models.RESOLUTION)[0]))
        torch.save(vae.state_dict(), vae_path)
    vae.requires_grad_(False)
    vae_seconds = time.monotonic() - started
    data = encode_dataset(cfg, vae, tokenizer, random.Random(cfg.seed + 2))
    result = train_unet(cfg, unet, clip, vae, tokenizer, data)
    unet.eval()
    clip.eval()
    meta = {"diffgraph.demo": json.dumps(asdict(cfg))}
    models.save_original_checkpoint(out / "diffgraph-shapes-raw.safetensors", unet, vae, clip, meta)
    result["ema"].copy_to(result["params"])
    models.save_original_checkpoint(out / "diffgraph-shapes.safetensors", unet, vae, clip, meta)
    summary = {"config": asdict(cfg), "vae_loss": vae_loss, "vae_seconds": round(vae_seconds),
               "total_seconds": round(time.monotonic() - started), "history": result["history"],
               "params": {"unet": models.count_params(unet), "vae": models.count_params(vae),
                          "text_encoder": models.count_params(clip)}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
