"""An independent checker for shape pictures: numpy and PIL only, no model.

From an RGB image it reads the background colour (the frame's border), the shape's colour (the
pixels that differ from it) and the shape's kind from the mask's fill ratio of its bounding box
and which corners of that box are filled (square: all four, triangle: the bottom two, circle: none).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from nodes.demo.dataset import COLOURS

_PALETTE_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[n] for n in _PALETTE_NAMES], dtype=np.float32)
# Feature templates per kind: (fill ratio, top-corner fill, bottom-corner fill), from the geometry.
_TEMPLATES = {"circle": (0.785, 0.0, 0.0), "square": (1.0, 1.0, 1.0), "triangle": (0.5, 0.0, 0.75)}
_CORNER = 0.15  # corner patch side, as a fraction of the box
_MASK_DISTANCE = 80.0  # RGB distance from the background above which a pixel belongs to the shape


@dataclass(frozen=True)
class Reading:
    """What the checker saw; `kind` is None when no shape could be found."""

    background: str
    colour: str | None
    kind: str | None
    fill: float = 0.0


def nearest_colour(rgb: np.ndarray, exclude: str | None = None) -> str:
    """The palette name closest (Euclidean RGB) to `rgb`, optionally excluding one name."""
    dist = np.linalg.norm(_PALETTE - np.asarray(rgb, dtype=np.float32), axis=1)
    if exclude is not None:
        dist[_PALETTE_NAMES.index(exclude)] = np.inf
    return _PALETTE_NAMES[int(np.argmin(dist))]


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """Float RGB array in 0..255, from a PIL image, a uint8 array, or a 0..1 float array."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32)
    arr = np.asarray(image, dtype=np.float32)
    return arr * 255.0 if arr.max() <= 1.0 + 1e-6 else arr


def _background(arr: np.ndarray) -> tuple[str, np.ndarray]:
    """Most common palette colour on a 2-pixel border, and the border's median RGB of that colour."""
    border = np.concatenate([arr[:2].reshape(-1, 3), arr[-2:].reshape(-1, 3),
                             arr[:, :2].reshape(-1, 3), arr[:, -2:].reshape(-1, 3)])
    names = [nearest_colour(p) for p in border]
    best = max(set(names), key=names.count)
    chosen = border[np.array([n == best for n in names])]
    return best, np.median(chosen, axis=0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask (flood fill; images are small)."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    best, best_size, current = 0, 0, 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if labels[y, x]:
            continue
        current += 1
        stack, size = [(y, x)], 0
        labels[y, x] = current
        while stack:
            cy, cx = stack.pop()
            size += 1
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    stack.append((ny, nx))
        if size > best_size:
            best, best_size = current, size
    return labels == best


def _kind(mask: np.ndarray) -> tuple[str, float]:
    """Nearest kind template to the mask's (fill, top corners, bottom corners) features."""
    ys, xs = np.nonzero(mask)
    box = mask[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].astype(np.float32)
    h, w = box.shape
    fill = float(box.mean())
    ch, cw = max(1, round(h * _CORNER)), max(1, round(w * _CORNER))
    top = (box[:ch, :cw].mean() + box[:ch, -cw:].mean()) / 2
    bottom = (box[-ch:, :cw].mean() + box[-ch:, -cw:].mean()) / 2
    feats = np.array([fill, top, bottom])
    scores = {k: float(np.linalg.norm(feats - np.array(t))) for k, t in _TEMPLATES.items()}
    return min(scores, key=scores.get), fill


def read_image(image: Image.Image | np.ndarray) -> Reading:
    """Background colour, shape colour and shape kind of one picture."""
    arr = _as_array(image)
    background, bg_rgb = _background(arr)
    mask = np.linalg.norm(arr - bg_rgb, axis=2) > _MASK_DISTANCE
    if mask.sum() < 4:
        return Reading(background, None, None)
    mask = _largest_component(mask)
    # The shape's colour from its interior: anti-aliased edge pixels are a blend with the background.
    eroded = mask & np.roll(mask, 1, 0) & np.roll(mask, -1, 0) & np.roll(mask, 1, 1) & np.roll(mask, -1, 1)
    core = eroded if eroded.sum() >= 4 else mask
    colour = nearest_colour(np.median(arr[core], axis=0), exclude=background)
    kind, fill = _kind(mask)
    return Reading(background, colour, kind, fill)
