"""ComfyUI's `folder_paths` module over the process's active `engine.FolderPaths`.

Functions read `engine.active_paths()` on every call, so a pack that imported this module before the
server set its paths still sees the right folders. Module attributes ComfyUI packs read
(`models_dir`, `base_path`, `output_directory`, `folder_names_and_paths`, ...) are computed on access.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from engine import active_paths, safe_join
from engine.folders import LEGACY_ALIASES, MODEL_EXTENSIONS, UnsafePathError

supported_pt_extensions: set[str] = set(MODEL_EXTENSIONS)

__all__ = [
    "add_model_folder_path", "annotated_filepath", "exists_annotated_filepath", "filter_files_extensions",
    "folder_names_and_paths", "get_annotated_filepath", "get_directory_by_type", "get_filename_list",
    "get_folder_paths", "get_full_path", "get_full_path_or_raise", "get_input_directory",
    "get_output_directory", "get_save_image_path", "get_temp_directory", "get_user_directory", "map_legacy",
    "supported_pt_extensions",
]
# Read on access from the active FolderPaths (never frozen by `from folder_paths import *`).
DYNAMIC_ATTRIBUTES = ("base_path", "models_dir", "output_directory", "input_directory", "temp_directory",
                      "user_directory")


def map_legacy(folder_name: str) -> str:
    return LEGACY_ALIASES.get(folder_name, folder_name)


def get_folder_paths(folder_name: str) -> list[str]:
    folder_name = map_legacy(folder_name)
    if folder_name == "custom_nodes":
        return [str(p) for p in active_paths().custom_nodes]
    return [str(p) for p in active_paths().models.get(folder_name, [])]


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    """Add a folder (a new model kind is created with ComfyUI's default extensions)."""
    active_paths().add_model_paths(folder_name, [Path(full_folder_path)], first=is_default)


def get_filename_list(folder_name: str) -> list[str]:
    """Sorted relative names ('/' separated) of the files in a model folder; [] for an unknown folder."""
    try:
        return active_paths().get_filename_list(folder_name)
    except KeyError:
        return []


def get_full_path(folder_name: str, filename: str) -> str | None:
    path = active_paths().get_full_path(folder_name, filename)
    return str(path) if path is not None else None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    path = get_full_path(folder_name, filename)
    if path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return path


def filter_files_extensions(files: list[str], extensions: set[str] | frozenset[str]) -> list[str]:
    exts = {e.lower() for e in extensions}
    return sorted(f for f in files if not exts or os.path.splitext(f)[1].lower() in exts)


def get_output_directory() -> str:
    return str(active_paths().output)


def get_input_directory() -> str:
    return str(active_paths().input)


def get_temp_directory() -> str:
    return str(active_paths().temp)


def get_user_directory() -> str:
    return str(active_paths().user)


def get_directory_by_type(type_name: str) -> str | None:
    path = active_paths().directory_by_type(type_name)
    return str(path) if path is not None else None


def annotated_filepath(name: str) -> tuple[str, str | None]:
    """Split `"x.png [output]"` into ("x.png", output dir); no annotation gives (name, None)."""
    for tag in ("output", "input", "temp"):
        if name.endswith(f" [{tag}]"):
            return name[: -len(tag) - 3], get_directory_by_type(tag)
    return name, None


def get_annotated_filepath(name: str, default_dir: str | None = None) -> str:
    """The file an annotated name points at; refuses names that leave their folder (UnsafePathError)."""
    bare, base = annotated_filepath(name)
    root = base or default_dir or get_input_directory()
    sub, _, fn = bare.rpartition("/")
    return str(safe_join(root, sub, fn))


def exists_annotated_filepath(name: str) -> bool:
    try:
        return os.path.exists(get_annotated_filepath(name))
    except UnsafePathError:
        return False


def _expand_prefix(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    tokens = {"%width%": str(width), "%height%": str(height), "%year%": str(now.tm_year),
              "%month%": f"{now.tm_mon:02d}", "%day%": f"{now.tm_mday:02d}", "%hour%": f"{now.tm_hour:02d}",
              "%minute%": f"{now.tm_min:02d}", "%second%": f"{now.tm_sec:02d}"}
    return re.sub(r"%\w+%", lambda m: tokens.get(m.group(0), m.group(0)), prefix)


def get_save_image_path(filename_prefix: str, output_dir: str, image_width: int = 0,
                        image_height: int = 0) -> tuple[str, str, int, str, str]:
    """ComfyUI's (full_output_folder, filename, counter, subfolder, filename_prefix).

    `counter` is one past the highest `<filename>_NNNNN` already in the folder. A prefix that would
    leave `output_dir` raises UnsafePathError (ComfyUI raises a bare Exception there).
    """
    filename_prefix = _expand_prefix(filename_prefix, image_width, image_height)
    subfolder, _, filename = filename_prefix.rpartition("/")
    full_output_folder = safe_join(output_dir, subfolder)
    pattern = re.compile(re.escape(filename) + r"_(\d+)_")
    counter = 1
    full_output_folder.mkdir(parents=True, exist_ok=True)  # as ComfyUI: the caller writes there next
    for existing in os.listdir(full_output_folder):
        match = pattern.match(existing)
        if match:
            counter = max(counter, int(match.group(1)) + 1)
    return str(full_output_folder), filename, counter, subfolder, filename_prefix


class _FolderList(list):
    """The path list of one folder kind; appends and inserts also reach the active FolderPaths."""

    def __init__(self, folder: str, paths: list[Path]):
        super().__init__(str(p) for p in paths)
        self._folder = folder

    def append(self, path: Any) -> None:
        super().append(str(path))
        active_paths().add_model_paths(self._folder, [Path(path)])

    def extend(self, paths: Any) -> None:
        for p in paths:
            self.append(p)

    def insert(self, index: Any, path: Any) -> None:
        super().insert(index, str(path))
        active_paths().add_model_paths(self._folder, [Path(path)], first=index == 0)


class FolderNamesAndPaths(MutableMapping):
    """`folder_names_and_paths[name] -> ([paths], {extensions})`, a live view of the active FolderPaths."""

    def __getitem__(self, name: str) -> tuple[list[str], set[str]]:
        name = map_legacy(name)
        fp = active_paths()
        if name == "custom_nodes":
            return _FolderList(name, fp.custom_nodes), set()
        if name not in fp.models:
            raise KeyError(name)
        return _FolderList(name, fp.models[name]), set(fp.extensions.get(name, MODEL_EXTENSIONS))

    def __setitem__(self, name: str, value: tuple[list[str], Any]) -> None:
        paths, exts = value
        name = map_legacy(name)
        fp = active_paths()
        fp.models[name] = [Path(p) for p in paths]
        fp.extensions[name] = frozenset(exts or ())

    def __delitem__(self, name: str) -> None:
        fp = active_paths()
        del fp.models[map_legacy(name)]
        fp.extensions.pop(map_legacy(name), None)

    def __iter__(self) -> Iterator[str]:
        return iter([*active_paths().models, "custom_nodes"])

    def __len__(self) -> int:
        return len(active_paths().models) + 1


folder_names_and_paths = FolderNamesAndPaths()  # a stateless live view, not a copy


def __getattr__(name: str) -> Any:
    # Module attributes that must follow the active FolderPaths, computed on access (PEP 562).
    fp = active_paths()
    computed = {
        "base_path": lambda: str(fp.base), "models_dir": lambda: str(fp.base / "models"),
        "output_directory": lambda: str(fp.output), "input_directory": lambda: str(fp.input),
        "temp_directory": lambda: str(fp.temp), "user_directory": lambda: str(fp.user),
    }
    if name in computed:
        return computed[name]()
    raise AttributeError(f"module 'folder_paths' has no attribute {name!r} (Diffgraph provides: "
                         f"{', '.join(sorted(__all__ + list(DYNAMIC_ATTRIBUTES)))})")
