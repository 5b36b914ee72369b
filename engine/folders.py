"""Where files live: model folders (ComfyUI names), input/output/temp/user directories, safe joins.

`FolderPaths` is an ordinary object built from the server's or CLI's flags. Nodes reach the one in
use through `active_paths()`: ComfyUI's `folder_paths` module is process-wide, and compatible packs
call it from `INPUT_TYPES` with no context, so exactly one instance is "active" per process.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

MODEL_EXTENSIONS = frozenset({".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"})
MODEL_FOLDERS = ("checkpoints", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
                 "style_models", "embeddings", "vae_approx", "controlnet", "gligen", "upscale_models",
                 "hypernetworks", "photomaker", "configs")
_FOLDER_DIRS = {"text_encoders": ("text_encoders", "clip"), "diffusion_models": ("unet", "diffusion_models"),
                "controlnet": ("controlnet", "t2i_adapter")}
LEGACY_ALIASES = {"unet": "diffusion_models", "clip": "text_encoders"}


_NAME_MAX, _PATH_MAX = 255, 4096  # bytes, as on Linux and macOS


class UnsafePathError(ValueError):
    """A user-supplied path would leave its root (`..`, absolute, NUL, backslash, symlink escape)."""


def _check_parts(*parts: object) -> None:
    for part in parts:
        if not isinstance(part, str):
            raise UnsafePathError(f"path part must be a string, got {type(part).__name__}")
        if "\x00" in part or "\\" in part:
            raise UnsafePathError(f"path {part!r} contains a NUL byte or a backslash")
        if part.startswith("/") or os.path.isabs(part):
            raise UnsafePathError(f"path {part!r} is absolute")
        if ".." in part.split("/"):
            raise UnsafePathError(f"path {part!r} contains '..'")
        try:  # a name the file system cannot hold (too long, unencodable) is refused, not an OSError later
            encoded = os.fsencode(part)
        except UnicodeError:
            raise UnsafePathError(f"path {part[:80]!r} cannot be encoded as a file name") from None
        if len(encoded) > _PATH_MAX or any(len(c) > _NAME_MAX for c in encoded.split(b"/")):
            raise UnsafePathError(f"path {part[:80]!r}... is longer than a file name may be")


def safe_join(root: str | os.PathLike, subfolder: str = "", filename: str = "") -> Path:
    """Join user-supplied `subfolder` and `filename` under `root`, refusing any escape.

    Rejects absolute parts, `..` components, NUL bytes and backslashes, then resolves symlinks
    (realpath) and checks the result is still inside the resolved root (commonpath).
    """
    _check_parts(subfolder, filename)
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, subfolder, filename))
    if os.path.commonpath([real_root, candidate]) != real_root:
        raise UnsafePathError(f"path {os.path.join(subfolder, filename)!r} leaves its folder")
    return Path(candidate)


@dataclass
class FolderPaths:
    """The directories of one installation (ComfyUI's layout under a base directory)."""

    base: Path
    output: Path | None = None
    input: Path | None = None
    temp: Path | None = None
    user: Path | None = None
    models: dict[str, list[Path]] = field(default_factory=dict)
    extensions: dict[str, frozenset[str]] = field(default_factory=dict)
    custom_nodes: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = Path(self.base).resolve()
        self.output = Path(self.output or self.base / "output")
        self.input = Path(self.input or self.base / "input")
        self.temp = Path(self.temp or self.base / "temp")
        self.user = Path(self.user or self.base / "user")
        for name in MODEL_FOLDERS:
            dirs = [self.base / "models" / d for d in _FOLDER_DIRS.get(name, (name,))]
            self.models.setdefault(name, dirs)
            self.extensions.setdefault(name, frozenset({".yaml"}) if name == "configs" else MODEL_EXTENSIONS)
        for sub in ("checkpoints", "vae", "loras"):  # saved models become loadable, as in ComfyUI
            if self.output / sub not in self.models[sub]:
                self.models[sub].append(self.output / sub)
        if not self.custom_nodes:
            self.custom_nodes = [self.base / "custom_nodes"]

    def add_model_paths(self, folder: str, paths: list[Path], first: bool = False) -> None:
        folder = LEGACY_ALIASES.get(folder, folder)
        if folder == "custom_nodes":
            self.custom_nodes.extend(Path(p) for p in paths)
            return
        current = self.models.setdefault(folder, [])
        self.extensions.setdefault(folder, MODEL_EXTENSIONS)
        new = [Path(p) for p in paths if Path(p) not in current]
        self.models[folder] = new + current if first else current + new

    def ensure_dirs(self) -> None:
        for d in (self.output, self.input, self.temp, self.user):
            d.mkdir(parents=True, exist_ok=True)

    def folder_names(self) -> list[str]:
        return sorted(self.models)

    def get_filename_list(self, folder: str) -> list[str]:
        """Sorted relative names (with '/') of the files in a model folder, recursively."""
        folder = LEGACY_ALIASES.get(folder, folder)
        if folder not in self.models:
            raise KeyError(f"unknown model folder {folder!r}; known: {', '.join(self.folder_names())}")
        exts = self.extensions.get(folder, MODEL_EXTENSIONS)
        names: set[str] = set()
        for root in self.models[folder]:
            if not root.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
                dirnames[:] = [d for d in dirnames if d != ".git"]
                rel = os.path.relpath(dirpath, root)
                for fn in filenames:
                    if Path(fn).suffix.lower() in exts:
                        names.add(fn if rel == "." else f"{rel}/{fn}".replace(os.sep, "/"))
        return sorted(names)

    def get_full_path(self, folder: str, name: str) -> Path | None:
        """The first existing file `name` in the folder's paths, or None; never outside them."""
        folder = LEGACY_ALIASES.get(folder, folder)
        try:
            _check_parts(name)  # the client's part: no '..', absolute, NUL or backslash
        except UnsafePathError:
            return None
        for root in self.models.get(folder, []):
            # Symlinks inside a model folder were placed by its owner (one shared models folder between
            # tools is the common set-up): follow them, as the listing does. Only the name is untrusted.
            path = Path(root) / name
            if path.is_file():
                return path
        return None

    def directory_by_type(self, kind: str) -> Path | None:
        return {"output": self.output, "input": self.input, "temp": self.temp}.get(kind)

    def annotated_path(self, name: str, default: str = "input") -> Path:
        """Resolve ComfyUI's `"x.png [output]"` annotation; plain names go to `default`."""
        kind = default
        for tag in ("output", "input", "temp"):
            if name.endswith(f" [{tag}]"):
                name, kind = name[: -len(tag) - 3], tag
        root = self.directory_by_type(kind)
        assert root is not None
        sub, _, fn = name.rpartition("/")
        return safe_join(root, sub, fn)


_lock = threading.Lock()
_active: list[FolderPaths] = []


def activate_paths(paths: FolderPaths) -> FolderPaths:
    """Make `paths` the process's active FolderPaths (done once by the server or CLI at start)."""
    with _lock:
        _active[:] = [paths]
    return paths


def active_paths() -> FolderPaths:
    """The active FolderPaths; by default the current directory's layout."""
    with _lock:
        if not _active:
            _active.append(FolderPaths(Path.cwd()))
        return _active[0]
