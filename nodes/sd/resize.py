"""Resizing latents and images the way ComfyUI's nodes do (`common_upscale`), plus spherical resize.

Methods: nearest-exact, bilinear, area, bicubic (torch `interpolate`, no antialias), lanczos (PIL,
8-bit, images only) and bislerp (latents: along each axis, neighbouring channel vectors are slerped
by direction and interpolated linearly by length, which keeps a latent's norm where bilinear shrinks it).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

LATENT_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "bislerp")
IMAGE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
CROP_METHODS = ("disabled", "center")


def center_crop(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Crop `[...,H,W]` symmetrically to the aspect ratio width:height."""
    old_h, old_w = x.shape[-2], x.shape[-1]
    old_aspect, new_aspect = old_w / old_h, width / height
    dx = dy = 0
    if old_aspect > new_aspect:
        dx = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        dy = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    return x.narrow(-2, dy, old_h - 2 * dy).narrow(-1, dx, old_w - 2 * dx)


def common_upscale(x: torch.Tensor, width: int, height: int, method: str, crop: str = "disabled") -> torch.Tensor:
    """Resize `[B,C,H,W]` to height x width (ComfyUI's comfy.utils.common_upscale)."""
    if method not in LATENT_METHODS + IMAGE_METHODS:
        raise ValueError(f"upscale_method {method!r} is not one of {', '.join(sorted(set(LATENT_METHODS + IMAGE_METHODS)))}")
    src = center_crop(x, width, height) if crop == "center" else x
    if method == "bislerp":
        return bislerp(src, width, height)
    if method == "lanczos":
        return lanczos(src, width, height)
    return F.interpolate(src, size=(height, width), mode=method)


def lanczos(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """PIL Lanczos on 8-bit copies of `[B,C,H,W]` 0..1 images (what ComfyUI does)."""
    from PIL import Image

    out = []
    for image in x:
        array = (image.movedim(0, -1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        pil = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        resized = np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
        t = torch.from_numpy(resized.copy())
        out.append((t[..., None] if t.ndim == 2 else t).movedim(-1, 0))
    return torch.stack(out).to(x.dtype)


def _slerp(a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Row-wise slerp of [N,C] vectors with weights r [N,1]; lengths are interpolated linearly."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua = torch.where(na > 0, a / na.clamp_min(1e-12), torch.zeros_like(a))
    ub = torch.where(nb > 0, b / nb.clamp_min(1e-12), torch.zeros_like(b))
    dot = (ua * ub).sum(1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.acos(dot)
    sin = torch.sin(omega)
    safe = sin.abs() > 1e-6
    wa = torch.where(safe, torch.sin((1 - r) * omega) / torch.where(safe, sin, 1.0), 1 - r)
    wb = torch.where(safe, torch.sin(r * omega) / torch.where(safe, sin, 1.0), r)
    direction = wa * ua + wb * ub
    out = direction * (na * (1 - r) + nb * r)
    linear = a * (1 - r) + b * r
    # Parallel vectors: slerp is the linear blend; opposite ones have no unique great circle.
    return torch.where((dot > 1 - 1e-5) | (dot < -1 + 1e-5), linear, out)


def _axis_coords(old: int, new: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # Same sample positions as bilinear interpolation with align_corners=False.
    pos = ((torch.arange(new, dtype=torch.float64) + 0.5) * old / new - 0.5).clamp(0, old - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=old - 1)
    return lo, hi, (pos - lo).float()


def _slerp_axis(x: torch.Tensor, new: int, dim: int) -> torch.Tensor:
    lo, hi, r = _axis_coords(x.shape[dim], new)
    a, b = x.index_select(dim, lo), x.index_select(dim, hi)
    shape = [1] * x.ndim
    shape[dim] = new
    rr = r.view(shape).expand(x.shape[0], 1, *a.shape[2:])
    flat = lambda t: t.movedim(1, -1).reshape(-1, t.shape[1])  # noqa: E731
    out = _slerp(flat(a), flat(b), flat(rr))
    return out.reshape(a.shape[0], *a.shape[2:], a.shape[1]).movedim(-1, 1)


def bislerp(x: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Spherical-linear resize of `[B,C,H,W]` latents: along width, then along height."""
    dtype = x.dtype
    out = _slerp_axis(x.float(), width, 3)
    return _slerp_axis(out, height, 2).to(dtype)


def outpaint_pad(image: torch.Tensor, left: int, top: int, right: int, bottom: int,
                 feathering: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI's ImagePadForOutpaint: grey padding and a mask (1 = paint) with a squared feather inside."""
    b, h, w, c = image.shape
    out = torch.full((b, h + top + bottom, w + left + right, c), 0.5, dtype=torch.float32)
    out[:, top:top + h, left:left + w] = image
    mask = torch.ones((h + top + bottom, w + left + right), dtype=torch.float32)
    inner = torch.zeros((h, w))
    if feathering > 0 and feathering * 2 < h and feathering * 2 < w:
        rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
        cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
        big_h, big_w = torch.full((h, w), float(h)), torch.full((h, w), float(w))
        dist = torch.stack([rows if top else big_h, (h - rows) if bottom else big_h,
                            cols if left else big_w, (w - cols) if right else big_w]).amin(0)
        ramp = ((feathering - dist) / feathering).clamp_min(0) ** 2
        inner = torch.where(dist < feathering, ramp, inner)
    mask[top:top + h, left:left + w] = inner
    return out, mask[None]
