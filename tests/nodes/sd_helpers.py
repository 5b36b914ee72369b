"""Shared, cached set-up for the Stable Diffusion node tests: one tiny checkpoint per process, its
reference (oracle) modules, and a FolderPaths sandbox that holds it.

Cached with lru_cache rather than conftest fixtures so every test module reuses the same objects
without owning tests/nodes/conftest.py.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

from nodes.sd.tiny import tiny_modules, write_tiny_checkpoint

TINY_NAME = "tiny.safetensors"


@functools.cache
def work_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="diffgraph-sd-tests-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def tiny_checkpoint(seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    """A tiny checkpoint file (cached per seed/dtype) outside any model folder."""
    return write_tiny_checkpoint(work_dir() / "files" / f"tiny-{seed}-{str(dtype)[6:]}.safetensors", seed, dtype=dtype)


@functools.cache
def reference(seed: int = 0, dtype: torch.dtype = torch.float16) -> tuple:
    """The diffusers/transformers modules holding exactly the weights of `tiny_checkpoint(seed, dtype)`."""
    return tiny_modules(seed, dtype)


@functools.cache
def loaded(seed: int = 0, dtype: torch.dtype = torch.float16) -> tuple:
    """(MODEL, CLIP, VAE) as our loader returns them, on the CPU; shared, so tests must not mutate."""
    from nodes.sd.loader import load_checkpoint

    return load_checkpoint(tiny_checkpoint(seed, dtype), "cpu")


def sandbox_paths(tmp_path: Path):
    """Generator for a per-test fixture: a FolderPaths rooted at tmp_path with the tiny checkpoint in
    models/checkpoints, active during the test (the previous one is restored afterwards)."""
    from engine import FolderPaths, activate_paths, active_paths

    previous = active_paths()
    paths = FolderPaths(tmp_path)
    ckpts = tmp_path / "models" / "checkpoints"
    ckpts.mkdir(parents=True)
    shutil.copy(tiny_checkpoint(), ckpts / TINY_NAME)
    paths.ensure_dirs()
    activate_paths(paths)
    yield paths
    activate_paths(previous)


def state_fingerprint(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Deep copies of every tensor of a module, to prove later that it was not modified."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_state(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    now = module.state_dict()
    return set(now) == set(before) and all(torch.equal(now[k], before[k]) for k in before)
