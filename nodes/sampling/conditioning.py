"""CONDITIONING -> what the UNet is run on: text context, area, weight map and active sigma range.

ComfyUI's shape is a list of `[tensor [B,77*k,C], {"pooled_output": ..., optional "area", "strength",
"mask", "mask_strength", "set_area_to_bounds", "start_percent", "end_percent"}]`. Each entry predicts the
noise of its area (the whole latent by default); overlapping predictions are averaged with weights
strength x mask (areas without a mask fade in over 8 latent pixels at inner edges, as ComfyUI does).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from .model_sampling import ModelSampling

FEATHER = 8  # latent pixels over which an area's weight ramps up at edges inside the image


@dataclass(frozen=True)
class CondEntry:
    """One resolved conditioning entry. `area` is (height, width, y, x) in latent pixels; `weight` is
    [Bw,1,h,w] (strength x mask x feathering); `sigma_range` is (high, low) or None for always."""

    context: torch.Tensor
    area: tuple[int, int, int, int]
    weight: torch.Tensor
    sigma_range: tuple[float, float] | None = None

    def active(self, sigma: float) -> bool:
        if self.sigma_range is None:
            return True
        high, low = self.sigma_range
        return low <= sigma <= high


def _check(conditioning: Any, what: str) -> list[tuple[torch.Tensor, dict[str, Any]]]:
    ok = isinstance(conditioning, (list, tuple)) and all(
        isinstance(c, (list, tuple)) and len(c) >= 2 and torch.is_tensor(c[0]) and isinstance(c[1], dict)
        for c in conditioning)
    if not ok:
        raise TypeError(f"{what} conditioning must be a list of [tensor, dict] pairs (ComfyUI's CONDITIONING), "
                        f"got {type(conditioning).__name__}")
    return [(c[0], c[1]) for c in conditioning]


def _area(opts: dict[str, Any], h: int, w: int) -> tuple[int, int, int, int]:
    area = opts.get("area")
    if area is None:
        return (h, w, 0, 0)
    if area[0] == "percentage":
        area = (max(1, round(area[1] * h)), max(1, round(area[2] * w)), round(area[3] * h), round(area[4] * w))
    ah, aw, y, x = (int(v) for v in area)
    y, x = min(max(y, 0), h - 1), min(max(x, 0), w - 1)
    return (max(1, min(ah, h - y)), max(1, min(aw, w - x)), y, x)


def _mask(opts: dict[str, Any], h: int, w: int) -> torch.Tensor | None:
    mask = opts.get("mask")
    if mask is None:
        return None
    mask = mask.float()
    if mask.ndim == 2:
        mask = mask[None]
    if mask.shape[-2:] != (h, w):
        mask = F.interpolate(mask[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    return mask * float(opts.get("mask_strength", 1.0))


def _bounds_area(mask: torch.Tensor) -> tuple[int, int, int, int]:
    """The area bounding a mask's non-zero cells (at least 8x8), for set_area_to_bounds."""
    any_mask = mask.abs().amax(dim=0) != 0
    if not bool(any_mask.any()):
        return (8, 8, 0, 0)
    ys, xs = torch.where(any_mask)
    y0, x0 = int(ys.min()), int(xs.min())
    return (max(8, int(ys.max()) - y0 + 1), max(8, int(xs.max()) - x0 + 1), y0, x0)


def _feather(weight: torch.Tensor, area: tuple[int, int, int, int], h: int, w: int) -> torch.Tensor:
    ah, aw, y, x = area
    ramp = lambda n: torch.arange(1, n + 1, dtype=weight.dtype) / FEATHER  # noqa: E731
    weight = weight.clone()
    n = min(FEATHER, ah)
    if y != 0:
        weight[..., :n, :] *= ramp(n)[:, None]
    if y + ah < h:
        weight[..., ah - n:, :] *= ramp(n).flip(0)[:, None]
    n = min(FEATHER, aw)
    if x != 0:
        weight[..., :, :n] *= ramp(n)
    if x + aw < w:
        weight[..., :, aw - n:] *= ramp(n).flip(0)
    return weight


def resolve(conditioning: Any, latent_shape: Sequence[int], ms: ModelSampling, what: str = "positive",
            device: Any = None) -> list[CondEntry]:
    """Resolve every entry of a CONDITIONING for a latent of `latent_shape` [B,C,h,w]."""
    _, _, h, w = latent_shape
    entries = []
    for context, opts in _check(conditioning, what):
        mask = _mask(opts, h, w)
        area = _bounds_area(mask) if mask is not None and opts.get("set_area_to_bounds") else _area(opts, h, w)
        ah, aw, y, x = area
        strength = float(opts.get("strength", 1.0))
        if mask is not None:
            weight = mask[:, None, y:y + ah, x:x + aw] * strength
        else:
            weight = _feather(torch.full((1, 1, ah, aw), strength), area, h, w)
        sigma_range = None
        if "start_percent" in opts or "end_percent" in opts:
            sigma_range = (ms.percent_to_sigma(float(opts.get("start_percent", 0.0))),
                           ms.percent_to_sigma(float(opts.get("end_percent", 1.0))))
        entries.append(CondEntry(context.to(device), area, weight.to(device), sigma_range))
    return entries


def mirror_areas(positive: list[CondEntry], negative: list[CondEntry]) -> list[CondEntry]:
    """Give the negative side an entry for each positive area it lacks, copying the context of the
    smallest negative entry that covers that area (ComfyUI's create_cond_with_same_area_if_none), so
    guidance compares predictions made over the same crop."""
    out = list(negative)
    for pos in positive:
        ph, pw, py, px = pos.area
        covering = [n for n in negative if n.area[2] <= py and n.area[3] <= px
                    and n.area[0] + n.area[2] >= ph + py and n.area[1] + n.area[3] >= pw + px]
        if not covering:
            continue
        smallest = min(covering, key=lambda n: n.area[0] * n.area[1])
        if smallest.area == pos.area:
            continue
        out.append(replace(smallest, area=pos.area, weight=pos.weight, sigma_range=pos.sigma_range))
    return out


def repeat_to_batch(t: torch.Tensor, batch: int) -> torch.Tensor:
    """Repeat (or cut) dim 0 to `batch`, as ComfyUI does for conditioning and masks."""
    if t.shape[0] == batch:
        return t
    if t.shape[0] > batch:
        return t[:batch]
    reps = -(-batch // t.shape[0])
    return t.repeat((reps,) + (1,) * (t.ndim - 1))[:batch]
