"""Exponential moving averages of weights: the seed's rule θ_ema ← α·θ_ema + (1−α)·θ.

`merge_state_dicts` is one EMA step over two state dicts; `EmaFold` folds an ordered sequence of
snapshots the way diffusers' `EMAModel.step` does (the first snapshot is the initial shadow; each
later one is one optimisation step, with EMAModel's decay schedule). Inputs are never modified:
every result tensor is new.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

WARMUP_MODES = ("none", "diffusers_default", "diffusers_power")


def ema_update(ema: torch.Tensor, value: torch.Tensor, decay: float) -> torch.Tensor:
    """A new tensor ema - (1 - decay)·(ema - value), i.e. decay·ema + (1 - decay)·value.

    Written as EMAModel.step writes it, in the shadow's dtype; non-float tensors keep `ema`'s value.
    """
    if not ema.is_floating_point():
        return ema.clone()
    return ema - (1.0 - decay) * (ema - value.to(ema.device, ema.dtype))


def merge_state_dicts(ema: Mapping[str, torch.Tensor], model: Mapping[str, torch.Tensor],
                      decay: float) -> dict[str, torch.Tensor]:
    """One EMA step, key by key; both dicts must hold the same keys and shapes."""
    if set(ema) != set(model):
        diff = sorted(set(ema) ^ set(model))
        raise ValueError(f"the two models differ in their weights ({len(diff)} keys, e.g. {diff[:3]})")
    with torch.no_grad():
        out = {}
        for key, value in ema.items():
            if value.shape != model[key].shape:
                raise ValueError(f"{key}: shape {tuple(value.shape)} vs {tuple(model[key].shape)}")
            out[key] = ema_update(value, model[key], decay)
    return out


def ema_decay(step: int, decay: float, warmup: str = "none", power: float = 2 / 3, inv_gamma: float = 1.0,
              update_after_step: int = 0, min_decay: float = 0.0) -> float:
    """The decay used at optimisation step `step` (1-based), as diffusers' EMAModel.get_decay.

    "none" is the constant rule; "diffusers_default" is EMAModel without use_ema_warmup,
    min(decay, (1+k)/(10+k)); "diffusers_power" is use_ema_warmup: 1 - (1 + k/inv_gamma)^-power;
    k = step - update_after_step - 1, and the decay is 0 while k <= 0.
    """
    if warmup not in WARMUP_MODES:
        raise ValueError(f"warmup {warmup!r} is not one of {', '.join(WARMUP_MODES)}")
    if warmup == "none":
        return decay
    k = max(0, step - update_after_step - 1)
    if k <= 0:
        return 0.0
    value = 1 - (1 + k / inv_gamma) ** -power if warmup == "diffusers_power" else (1 + k) / (10 + k)
    return max(min(value, decay), min_decay)


@dataclass
class EmaFold:
    """Fold snapshots θ_0, θ_1, ... into their EMA: shadow = θ_0, then one step per later snapshot."""

    decay: float
    warmup: str = "none"
    power: float = 2 / 3
    shadow: dict[str, torch.Tensor] | None = None
    steps: int = 0

    def add(self, snapshot: Mapping[str, torch.Tensor]) -> None:
        if self.shadow is None:
            self.shadow = {k: v.detach().clone() for k, v in snapshot.items()}
            return
        self.steps += 1
        decay = ema_decay(self.steps, self.decay, self.warmup, self.power)
        self.shadow = merge_state_dicts(self.shadow, snapshot, decay)
