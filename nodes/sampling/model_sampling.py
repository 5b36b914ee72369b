"""The discrete noise schedule of a trained model, seen in sigma space (Karras et al. 2022, "EDM").

`ModelSampling` turns a diffusers scheduler config (betas) into the table sigma_t = sqrt((1 - abar_t) / abar_t),
converts sigma <-> timestep as ComfyUI does (nearest integer t in log-sigma for the UNet, log-linear
interpolation for t -> sigma), and knows how an eps- or v-prediction output becomes the denoised x0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

# Stable Diffusion 1.x's training schedule as diffusers writes it (its PNDM config; the SD loaders use it).
SD1_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "PNDMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "prediction_type": "epsilon", "steps_offset": 1, "clip_sample": False,
    "set_alpha_to_one": False, "skip_prk_steps": True, "timestep_spacing": "leading", "trained_betas": None,
}


def betas_from_config(config: dict[str, Any]) -> torch.Tensor:
    """The training betas (float64) that diffusers would build from `config`."""
    n = int(config.get("num_train_timesteps", 1000))
    if config.get("trained_betas") is not None:
        return torch.as_tensor(config["trained_betas"], dtype=torch.float64)
    start, end = float(config.get("beta_start", 0.0001)), float(config.get("beta_end", 0.02))
    kind = config.get("beta_schedule", "linear")
    if kind == "linear":
        return torch.linspace(start, end, n, dtype=torch.float64)
    if kind == "scaled_linear":  # SD's schedule: linear in sqrt(beta)
        return torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float64) ** 2
    if kind == "squaredcos_cap_v2":  # Nichol & Dhariwal 2021, eq. 17, betas capped at 0.999
        def abar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return torch.tensor([min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)], dtype=torch.float64)
    raise ValueError(f"beta_schedule {kind!r} is not supported (use linear, scaled_linear or squaredcos_cap_v2)")


def zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2024, alg. 1: shift and scale sqrt(alpha_bar) so the last step has zero SNR. As ComfyUI
    does, the last alpha_bar is then set to a tiny positive value so its sigma stays finite."""
    root = alphas_cumprod.sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    out = root ** 2
    out[-1] = 4.8973451890853435e-08
    return out


@dataclass(frozen=True)
class ModelSampling:
    """Sigma table of a discrete-time model and the eps/v parameterisation around the UNet.

    `sigmas[t]` (float32, increasing in t) is the noise level of training timestep t; `prediction_type`
    is "epsilon" or "v_prediction". Latents live in the variance-exploding space x = x0 + sigma * eps.
    """

    sigmas: torch.Tensor
    prediction_type: str = "epsilon"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModelSampling:
        betas = betas_from_config(config)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        if config.get("rescale_betas_zero_snr"):
            alphas_cumprod = zero_terminal_snr(alphas_cumprod)
        sigmas = ((1.0 - alphas_cumprod) / alphas_cumprod) ** 0.5
        kind = config.get("prediction_type", "epsilon")
        if kind not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"prediction_type {kind!r} is not supported (epsilon, v_prediction or sample)")
        return cls(sigmas.float(), kind)

    @property
    def log_sigmas(self) -> torch.Tensor:
        return self.sigmas.log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    @property
    def num_timesteps(self) -> int:
        return len(self.sigmas)

    def timestep(self, sigma: torch.Tensor | float) -> torch.Tensor:
        """The integer training timestep nearest to `sigma` in log space (what the UNet is fed)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        dists = sigma.log().reshape(-1)[None, :] - self.log_sigmas[:, None]
        return dists.abs().argmin(dim=0).reshape(sigma.shape).float()

    def sigma(self, timestep: torch.Tensor | float) -> torch.Tensor:
        """Sigma at a (possibly fractional) timestep, interpolating log-sigma linearly."""
        t = torch.as_tensor(timestep, dtype=torch.float32).clamp(0, self.num_timesteps - 1)
        low = t.floor().long()
        high = t.ceil().long()
        w = t - low.float()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()

    def percent_to_sigma(self, percent: float) -> float:
        """Sigma at `percent` (0 = start, 1 = end) of the training schedule (ComfyUI's start/end percent)."""
        if percent <= 0.0:
            return 999999999.9
        if percent >= 1.0:
            return 0.0
        return float(self.sigma(torch.tensor((1.0 - percent) * (self.num_timesteps - 1))))

    def is_max_denoise(self, sigma: float) -> bool:
        """True when sampling starts at (or above) the top of the schedule: pure noise, txt2img."""
        return math.isclose(self.sigma_max, sigma, rel_tol=1e-05) or sigma > self.sigma_max

    def noise_scaling(self, sigma: float, noise: torch.Tensor, latent: torch.Tensor,
                      max_denoise: bool = False) -> torch.Tensor:
        """The starting latent at `sigma`: latent + sigma * noise (sqrt(1 + sigma^2) at max denoise,
        the marginal's std when the image is pure noise, as ComfyUI does)."""
        scale = math.sqrt(1.0 + sigma ** 2) if max_denoise else sigma
        return latent + noise * scale

    def input_scale(self, sigma: torch.Tensor) -> torch.Tensor:
        """c_in = 1 / sqrt(sigma^2 + 1): VE latent -> the UNet's variance-preserving input."""
        return 1.0 / (sigma ** 2 + 1.0) ** 0.5

    def denoised(self, sigma: torch.Tensor, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """x0 from the UNet output: eps (x - sigma eps) or v (Salimans & Ho 2022, alpha x - sigma v in VP)."""
        sigma = sigma.reshape(sigma.shape[:1] + (1,) * (x.ndim - 1)) if sigma.ndim else sigma
        if self.prediction_type == "v_prediction":
            return x / (sigma ** 2 + 1.0) - output * sigma / (sigma ** 2 + 1.0) ** 0.5
        if self.prediction_type == "sample":  # the model predicts x0 itself (ComfyUI's "x0")
            return output
        return x - output * sigma
