"""The objects that flow along MODEL, CLIP and VAE links, shared by every built-in node.

They wrap real diffusers/transformers modules. Nodes never mutate one: `clone()` gives a shallow
copy that shares the weights and copies the options, so patches (callbacks, cfg functions) stay
local to the branch that made them.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from engine.cache import measure, storage_identity


def held_storages(*values: Any) -> dict[Any, int]:
    """The output cache's `__cache_storages__` hook: every parameter and buffer storage of the torch
    modules among `values` (other values are measured as the cache would), each once, by identity."""
    out: dict[Any, int] = {}
    for value in values:
        if hasattr(value, "parameters") and hasattr(value, "buffers"):
            for tensor in (*value.parameters(), *value.buffers()):
                st = tensor.untyped_storage()
                if str(st.device) != "meta":
                    out[storage_identity(st.device, st.data_ptr())] = int(st.nbytes())
        elif value is not None:
            out.update(measure(value)[1])
    return out


@dataclass
class DiffusionModel:
    """MODEL: a denoising UNet plus what sampling needs to know about it.

    - `unet`: diffusers `UNet2DConditionModel` in eval mode (shared, never modified in place).
    - `scheduler_config`: the training noise schedule as a diffusers scheduler config dict
      (num_train_timesteps, beta_start, beta_end, beta_schedule, prediction_type, ...).
    - `options`: patches set by nodes, e.g. ``"step_callbacks"`` (a tuple of callables),
      ``"sampler_cfg_function"``; read by the samplers.
    - `family`: "sd1" today; "sd2"/"sdxl" later.
    - `latent_scale`: as in ComfyUI, LATENT `samples` hold the VAE's raw latents (VAEEncode/VAEDecode
      do not scale); samplers multiply by this on the way in and divide on the way out
      (ComfyUI's `process_latent_in/out`; 0.18215 for SD1.x).
    """

    unet: Any
    scheduler_config: dict[str, Any]
    family: str = "sd1"
    options: dict[str, Any] = field(default_factory=dict)
    latent_scale: float = 0.18215

    @property
    def prediction_type(self) -> str:
        return self.scheduler_config.get("prediction_type", "epsilon")

    @property
    def device(self) -> Any:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> Any:
        return next(self.unet.parameters()).dtype

    def clone(self) -> DiffusionModel:
        return replace(self, options=copy.copy(self.options))

    def __cache_storages__(self) -> dict[Any, int]:
        return held_storages(self.unet, self.options)

    def with_option(self, key: str, value: Any) -> DiffusionModel:
        out = self.clone()
        out.options[key] = value
        return out

    def add_step_callback(self, callback: Any) -> DiffusionModel:
        """A clone whose samplers also call `callback` after every step (see nodes/sampling)."""
        return self.with_option("step_callbacks", tuple(self.options.get("step_callbacks", ())) + (callback,))


@dataclass
class ClipModel:
    """CLIP: a tokenizer and a transformers `CLIPTextModel`; `layer_idx` < 0 is clip skip (-1 = last)."""

    tokenizer: Any
    text_encoder: Any
    layer_idx: int = -1
    options: dict[str, Any] = field(default_factory=dict)

    def clone(self) -> ClipModel:
        return replace(self, options=copy.copy(self.options))

    def __cache_storages__(self) -> dict[Any, int]:
        return held_storages(self.text_encoder, self.options)


@dataclass
class VaeModel:
    """VAE: a diffusers `AutoencoderKL` and its latent scaling factor (0.18215 for SD1.x).

    `encode`/`decode` work in the raw latent space (no scaling), as ComfyUI's VAE does; see
    `DiffusionModel.latent_scale` and nodes/sd/vae.py."""

    vae: Any
    scaling_factor: float = 0.18215

    @property
    def downscale(self) -> int:
        """Pixels per latent cell (the seed's vae_scale_factor): 2 ** (number of down blocks - 1)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def clone(self) -> VaeModel:
        return replace(self)

    def __cache_storages__(self) -> dict[Any, int]:
        return held_storages(self.vae)
