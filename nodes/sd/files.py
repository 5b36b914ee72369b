"""Files in the input/output/temp folders: ComfyUI's `{prefix}_{counter:05}_` names, PNGs with
workflow text chunks, and loading images (alpha -> MASK, animated frames -> batch).

Every user-supplied name goes through `engine.safe_join`, so a prefix or an image name cannot
leave its folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import safe_join

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
_DATE_VARS = {"%year%": "tm_year", "%month%": "tm_mon", "%day%": "tm_mday", "%hour%": "tm_hour",
              "%minute%": "tm_min", "%second%": "tm_sec"}


def expand_prefix(prefix: str, width: int = 0, height: int = 0) -> str:
    """ComfyUI's %width%, %height%, %year% ... variables in a filename prefix."""
    if "%" not in prefix:
        return prefix
    now = time.localtime()
    prefix = prefix.replace("%width%", str(width)).replace("%height%", str(height))
    for var, attr in _DATE_VARS.items():
        value = getattr(now, attr)
        prefix = prefix.replace(var, str(value) if attr == "tm_year" else str(value).zfill(2))
    return prefix


def split_prefix(root: Path, prefix: str) -> tuple[Path, str, str]:
    """(folder, file stem, subfolder) for a prefix like "sub/dir/name", refusing escapes."""
    prefix = prefix.replace("\\", "/").strip()
    subfolder, _, stem = prefix.rpartition("/")
    folder = safe_join(root, subfolder)  # absolute or '..' prefixes are refused, as ComfyUI does
    if not stem:
        raise ValueError(f"filename_prefix {prefix!r} has no file name part")
    return folder, stem, subfolder


def next_counter(folder: Path, stem: str) -> int:
    """1 + the highest counter of existing `{stem}_{NNNNN}_*` files (ComfyUI's rule)."""
    rx = re.compile(re.escape(stem) + r"_(\d+)_", re.IGNORECASE)
    best = 0
    if folder.is_dir():
        for entry in os.listdir(folder):
            m = rx.match(entry)
            if m:
                best = max(best, int(m.group(1)))
    return best + 1


def save_counter_path(root: Path, prefix: str, suffix: str, width: int = 0, height: int = 0
                      ) -> tuple[Path, str, str]:
    """(path, subfolder, filename) of the next free `{stem}_{counter:05}_{suffix}` under `root`."""
    folder, stem, subfolder = split_prefix(Path(root), expand_prefix(prefix, width, height))
    folder.mkdir(parents=True, exist_ok=True)
    counter = next_counter(folder, stem)
    while (folder / f"{stem}_{counter:05}_{suffix}").exists():
        counter += 1
    name = f"{stem}_{counter:05}_{suffix}"
    return folder / name, subfolder, name


def to_pil(image: torch.Tensor) -> Any:
    """One `[H,W,C]` 0..1 image -> PIL, truncating like ComfyUI (clip(255·x).astype(uint8))."""
    from PIL import Image

    array = np.clip(255.0 * image.detach().cpu().float().numpy(), 0, 255).astype(np.uint8)
    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)


def png_info(prompt: Any, extra_pnginfo: Any) -> Any:
    """PNG text chunks: `prompt` (the API workflow) and one per extra_pnginfo key (`workflow`)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def save_images(images: torch.Tensor, root: Path, prefix: str, kind: str, prompt: Any = None,
                extra_pnginfo: Any = None, compress_level: int = 4) -> list[dict[str, str]]:
    """Write a `[B,H,W,C]` batch as PNGs; returns ComfyUI's ui entries {filename, subfolder, type}."""
    results = []
    metadata = png_info(prompt, extra_pnginfo)
    height, width = int(images.shape[1]), int(images.shape[2])
    folder, stem, subfolder = split_prefix(Path(root), expand_prefix(prefix, width, height))
    folder.mkdir(parents=True, exist_ok=True)
    counter = next_counter(folder, stem)
    for index, image in enumerate(images):
        base = stem.replace("%batch_num%", str(index))
        while True:
            path = folder / f"{base}_{counter:05}_.png"
            try:
                handle = open(path, "xb")  # exclusive: two saves at once never share a name
            except FileExistsError:
                counter += 1
                continue
            break
        with handle:
            to_pil(image).save(handle, format="PNG", pnginfo=metadata, compress_level=compress_level)
        results.append({"filename": path.name, "subfolder": subfolder, "type": kind})
        counter += 1
    return results


def list_images(folder: Path) -> list[str]:
    """Image files directly in `folder`, sorted (LoadImage's choices)."""
    if not folder.is_dir():
        return []
    return sorted(f.name for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_image_file(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI's LoadImage: (IMAGE [B,H,W,3], MASK [B,H,W]); mask = 1 - alpha, 64x64 zeros without alpha.

    Frames of an animated file become the batch (frames of another size are skipped); EXIF
    orientation is applied; 16-bit grey ("I" mode) is scaled to 0..1.
    """
    from PIL import Image, ImageOps, ImageSequence

    images, masks = [], []
    with Image.open(path) as img:
        fmt = img.format
        for frame in ImageSequence.Iterator(img):
            frame = ImageOps.exif_transpose(frame)
            if frame.mode == "I":
                frame = frame.point(lambda v: v * (1 / 255))
            rgb = frame.convert("RGB")
            if images and rgb.size != (images[0].shape[2], images[0].shape[1]):
                continue
            images.append(torch.from_numpy(np.array(rgb).astype(np.float32) / 255.0)[None])
            if "A" in frame.getbands():
                alpha = np.array(frame.getchannel("A")).astype(np.float32) / 255.0
                mask = 1.0 - torch.from_numpy(alpha)
            elif frame.mode == "P" and "transparency" in frame.info:
                alpha = np.array(frame.convert("RGBA").getchannel("A")).astype(np.float32) / 255.0
                mask = 1.0 - torch.from_numpy(alpha)
            else:
                mask = torch.zeros((64, 64), dtype=torch.float32)
            masks.append(mask[None])
    if len(images) > 1 and fmt != "MPO":
        return torch.cat(images), torch.cat(masks)
    return images[0], masks[0]
