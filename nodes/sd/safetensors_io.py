"""Reading checkpoint files: memory-mapped safetensors, and pickle only behind an explicit opt-in.

A safetensors file is validated before any tensor is read (header size, JSON, dtypes, offsets inside
the file), so a truncated or foreign file gets a `CheckpointError` that says what is wrong. Tensors
are copied out of the mapping one at a time and their pages are released at once, so loading never
holds a second full copy of the file in RAM.
"""
from __future__ import annotations

import json
import math
import mmap
import os
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

PICKLE_ENV = "DIFFGRAPH_ALLOW_PICKLE"
MAX_HEADER_BYTES = 100 * 1024 * 1024
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}
HALF_TYPES = (torch.float16, torch.bfloat16)
PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pt2"}


class CheckpointError(ValueError):
    """A model file that cannot be used: truncated, not a checkpoint, refused pickle, wrong family."""


def allow_pickle(enabled: bool | None = None) -> bool:
    """Opt in to (or out of) loading pickle checkpoints; returns the current setting.

    The setting lives in the environment variable DIFFGRAPH_ALLOW_PICKLE ("1" = allowed), so a
    server started with its opt-in flag passes it to every worker. Even then only
    `torch.load(weights_only=True)` is used.
    """
    if enabled is not None:
        os.environ[PICKLE_ENV] = "1" if enabled else "0"
    return os.environ.get(PICKLE_ENV, "0").strip().lower() in ("1", "true", "yes")


def target_dtype(stored: torch.dtype, device: torch.device) -> torch.dtype:
    """fp16/bf16 weights become fp32 on CPU (slow or missing half kernels) and stay half elsewhere."""
    if stored in HALF_TYPES and device.type == "cpu":
        return torch.float32
    return stored


class SafetensorsFile:
    """A validated, memory-mapped safetensors file. Use as a context manager."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._file = open(self.path, "rb")
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            self.entries, self.metadata, self._base = _read_header(self._file, self.size, self.path.name)
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> SafetensorsFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self._file.close()

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.entries[key]["shape"])

    def dtype(self, key: str) -> torch.dtype:
        return DTYPES[self.entries[key]["dtype"]]

    def tensor(self, key: str, device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> torch.Tensor:
        """A new tensor (never a view of the mapping) on `device`; dtype defaults to `target_dtype`."""
        device = torch.device(device)
        dtype = dtype or target_dtype(self.dtype(key), device)
        out = torch.empty(self.shape(key), dtype=dtype, device=device)
        return self.read_into(key, out)

    def read_into(self, key: str, out: torch.Tensor) -> torch.Tensor:
        """Copy (and convert) one stored tensor into `out`, then release the pages it was read from."""
        entry, stored = self.entries[key], self.dtype(key)
        start, end = (self._base + o for o in entry["data_offsets"])
        if end == start:
            return out
        assert self._map is not None
        view = memoryview(self._map)[start:end]
        try:
            with warnings.catch_warnings():  # the mapping is read-only; it is only ever copied from
                warnings.simplefilter("ignore", UserWarning)
                raw = torch.frombuffer(view, dtype=stored).reshape(entry["shape"])
            out.copy_(raw)
            del raw
        finally:
            view.release()
        self._drop_pages(start, end)
        return out

    def _drop_pages(self, start: int, end: int) -> None:
        # Mapped pages count in RSS until released; the kernel keeps them in its page cache anyway.
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        lo = start - start % page
        self._map.madvise(mmap.MADV_DONTNEED, lo, min(end, self.size) - lo)

    def iter_tensors(self, keys: list[str] | None = None, device: torch.device | str = "cpu") -> Iterator[tuple[str, torch.Tensor]]:
        for key in keys if keys is not None else self.keys():
            yield key, self.tensor(key, device)


def _read_header(f: Any, size: int, name: str) -> tuple[dict[str, dict], dict[str, str], int]:
    if size < 8:
        raise CheckpointError(f"{name}: {size} bytes is too short to be a safetensors file (truncated?)")
    n = int.from_bytes(f.read(8), "little")
    if n < 2 or n > MAX_HEADER_BYTES or n > size - 8:
        hint = " (the file is truncated)" if 2 <= n <= MAX_HEADER_BYTES else ""
        raise CheckpointError(f"{name}: not a valid safetensors file: header length {n} for a file of "
                              f"{size} bytes{hint}")
    try:
        header = json.loads(f.read(n))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{name}: not a valid safetensors file: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: not a valid safetensors file: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    base, data = 8 + n, size - 8 - n
    for key, entry in header.items():
        _check_entry(name, key, entry, data)
    return header, {str(k): str(v) for k, v in metadata.items()}, base


def _check_entry(name: str, key: str, entry: Any, data_bytes: int) -> None:
    if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES:
        raise CheckpointError(f"{name}: tensor {key!r} has an unsupported dtype "
                              f"{entry.get('dtype') if isinstance(entry, dict) else entry!r}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
            or not isinstance(offsets, list) or len(offsets) != 2):
        raise CheckpointError(f"{name}: tensor {key!r} has a malformed shape or data_offsets")
    start, end = offsets
    itemsize = torch.empty((), dtype=DTYPES[entry["dtype"]]).element_size()
    if end - start != math.prod(shape) * itemsize or start < 0:
        raise CheckpointError(f"{name}: tensor {key!r} byte range {offsets} does not match shape {shape}")
    if end > data_bytes:
        raise CheckpointError(f"{name}: file is truncated: tensor {key!r} needs {end} data bytes, "
                              f"the file holds {data_bytes}")


def sniff_format(path: Path) -> str:
    """"safetensors", "pickle" (torch zip or legacy pickle) or "unknown", from the first bytes."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return "pickle"
    return "unknown"


def load_pickle_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A pickle checkpoint's tensors via `torch.load(weights_only=True)`, only after `allow_pickle`."""
    if not allow_pickle():
        raise CheckpointError(
            f"{path.name}: pickle checkpoints (.ckpt/.pt/.pth) can run code when loaded and are refused. "
            f"Convert it to .safetensors, or opt in explicitly (server flag, {PICKLE_ENV}=1, or "
            f"nodes.sd.safetensors_io.allow_pickle(True)); even then only weights_only loading is used.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # torch raises many types for corrupt or unsafe pickles
        raise CheckpointError(f"{path.name}: could not be read as a weights-only torch checkpoint: {exc}") from exc
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name}: holds a {type(obj).__name__}, not a dict of tensors")
    return _flatten_tensors(obj)


def _flatten_tensors(obj: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    # Nested dicts (e.g. a textual inversion's {"string_to_param": {"*": tensor}}) become dotted keys.
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            out[prefix + str(key)] = value
        elif isinstance(value, dict):
            out.update(_flatten_tensors(value, f"{prefix}{key}."))
    return out


class StateDictSource:
    """One interface over a safetensors file or an (opted-in) pickle state dict: keys, shapes, tensors."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path.name}: file not found")
        kind = sniff_format(self.path)
        if kind == "unknown" and self.path.suffix.lower() in PICKLE_SUFFIXES:
            kind = "pickle"
        self.kind = "pickle" if kind == "pickle" else "safetensors"
        self._sd = load_pickle_state_dict(self.path) if kind == "pickle" else None
        # Anything else is validated as safetensors, which names what is wrong (truncated, not one).
        self._st = SafetensorsFile(self.path) if kind != "pickle" else None
        self.metadata = self._st.metadata if self._st else {}

    def __enter__(self) -> StateDictSource:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._st is not None:
            self._st.close()
        self._sd = None

    def keys(self) -> list[str]:
        return self._st.keys() if self._st else list(self._sd or {})

    def shapes(self) -> dict[str, tuple[int, ...]]:
        if self._st:
            return {k: self._st.shape(k) for k in self._st.keys()}
        return {k: tuple(v.shape) for k, v in (self._sd or {}).items()}

    def tensor(self, key: str, device: torch.device | str = "cpu") -> torch.Tensor:
        if self._st:
            return self._st.tensor(key, device)
        t = (self._sd or {})[key]
        return t.to(device=device, dtype=target_dtype(t.dtype, torch.device(device)), copy=True)

    def load(self, keys: list[str], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Several tensors, read one after another (each mapped page is released once copied)."""
        return {k: self.tensor(k, device) for k in keys}
