"""The example workflows in workflows/ run end to end through the Executor on tiny checkpoints written by
nodes/sd/tiny.py (and on the bundled model when it is present), and each shows what it is for."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import FolderPaths, activate_paths, active_paths
from nodes.sampling import DIFFUSERS_SCHEDULER_NAMES
from nodes.sd.tiny import write_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ["txt2img.json", "img2img.json", "dynamic_guidance.json", "diffusers_scheduler.json", "ema_merge.json"]
BUNDLED = ROOT / "models" / "checkpoints"


def load(name: str) -> dict:
    return json.loads((ROOT / "workflows" / name).read_text())


def make_executor():
    from engine import NodeRegistry
    from engine.executor import Executor
    from engine.plugins import load_builtin

    registry = NodeRegistry()
    report = load_builtin(registry)
    assert report.state == "loaded", report.error
    return Executor(registry)


def _install(base: Path, checkpoints: Path) -> FolderPaths:
    paths = FolderPaths(base, models={"checkpoints": [checkpoints]})
    paths.ensure_dirs()
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[8:24, 8:24] = (200, 40, 40)  # a red square, the img2img workflow's example.png
    Image.fromarray(pixels).save(paths.input / "example.png")
    return paths


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    base = tmp_path_factory.mktemp("workflows")
    checkpoints = base / "ckpt"
    write_tiny_checkpoint(checkpoints / "diffgraph-shapes.safetensors", seed=0)
    write_tiny_checkpoint(checkpoints / "diffgraph-shapes-raw.safetensors", seed=1)
    previous = active_paths()
    activate_paths(_install(base, checkpoints))
    try:
        yield make_executor()
    finally:
        activate_paths(previous)


def run(executor, workflow: dict, fresh: bool = True):
    if fresh:
        executor.free()  # no cached outputs: a rerun really samples again
    result = executor.run(workflow)
    assert result.ok, result.failures or result.validation.response()
    return result


def latents(result, node_id: str) -> torch.Tensor:
    return result.values[node_id][0][0]["samples"]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_example_workflow_runs_and_saves_images(executor, name):
    result = run(executor, load(name))
    batch = 1 if name == "img2img.json" else 2  # img2img: the one loaded image
    saved = result.outputs["9"]["images"]
    assert len(saved) == batch and all((active_paths().output / s["subfolder"] / s["filename"]).is_file() for s in saved)
    side = 32 if name == "img2img.json" else 64  # the tiny VAE is /8: a 64 px latent image, or the 32 px input
    assert tuple(result.values["8"][0][0].shape) == (batch, side, side, 3)


def test_txt2img_same_seed_same_image_different_seed_different(executor):
    wf = load("txt2img.json")
    first, again = latents(run(executor, wf), "3"), latents(run(executor, wf), "3")
    assert torch.equal(first, again)
    other = copy.deepcopy(wf)
    other["3"]["inputs"]["seed"] = 43
    assert not torch.allclose(latents(run(executor, other), "3"), first, atol=1e-3)


def test_img2img_starts_from_the_loaded_image(executor):
    wf = load("img2img.json")
    untouched = copy.deepcopy(wf)
    untouched["3"]["inputs"]["denoise"] = 0.0
    result = run(executor, untouched)
    assert torch.equal(latents(result, "3"), latents(result, "11"))  # nothing to denoise: the encoded image
    changed = latents(run(executor, wf), "3")
    assert not torch.allclose(changed, latents(result, "11"), atol=1e-3)


def test_dynamic_guidance_equals_three_ksampler_advanced_segments(executor):
    wf = load("dynamic_guidance.json")
    scheduled = latents(run(executor, wf), "3")
    chain = copy.deepcopy(wf)
    del chain["12"], chain["3"]
    settings = {"noise_seed": 42, "steps": 20, "sampler_name": "euler", "scheduler": "normal", "model": ["4", 0],
                "positive": ["6", 0], "negative": ["7", 0]}
    segments = [("20", ["5", 0], "enable", 0, 6, 10.0, "enable"), ("21", ["20", 0], "disable", 6, 12, 7.5, "enable"),
                ("22", ["21", 0], "disable", 12, 10000, 5.0, "disable")]
    for nid, source, add_noise, start, end, cfg, leftover in segments:
        chain[nid] = {"class_type": "KSamplerAdvanced", "inputs": {
            **settings, "latent_image": source, "add_noise": add_noise, "start_at_step": start, "end_at_step": end,
            "cfg": cfg, "return_with_leftover_noise": leftover}}
    chain["8"]["inputs"]["samples"] = ["22", 0]
    torch.testing.assert_close(scheduled, latents(run(executor, chain), "22"), rtol=1e-4, atol=1e-4)
    constant = copy.deepcopy(wf)
    constant["12"]["inputs"]["enabled"] = False
    assert not torch.allclose(latents(run(executor, constant), "3"), scheduled, atol=1e-3)


def test_diffusers_scheduler_swap_runs_every_scheduler(executor):
    wf = load("diffusers_scheduler.json")
    outs = {}
    for name in DIFFUSERS_SCHEDULER_NAMES:
        swapped = copy.deepcopy(wf)
        swapped["13"]["inputs"].update(scheduler=name, sigma_schedule="default", algorithm_type="default",
                                       solver_order=0, steps=6)
        outs[name] = latents(run(executor, swapped, fresh=False), "13")
        assert torch.isfinite(outs[name]).all()
    assert not torch.allclose(outs["DDIMScheduler"], outs["EulerAncestralDiscreteScheduler"], atol=1e-3)


def test_ema_merge_with_decay_one_is_the_ema_checkpoint(executor):
    merged = load("ema_merge.json")
    merged["15"]["inputs"]["decay"] = 1.0
    assert torch.equal(latents(run(executor, merged), "3"), latents(run(executor, load("txt2img.json")), "3"))
    blended = latents(run(executor, load("ema_merge.json")), "3")
    assert not torch.allclose(blended, latents(run(executor, load("txt2img.json")), "3"), atol=1e-3)


@pytest.mark.skipif(not (BUNDLED / "diffgraph-shapes.safetensors").is_file(), reason="bundled model not present")
@pytest.mark.parametrize("name", WORKFLOWS)
def test_example_workflow_runs_on_the_bundled_model(tmp_path, name):
    if name == "ema_merge.json" and not (BUNDLED / "diffgraph-shapes-raw.safetensors").is_file():
        pytest.skip("the bundled model's raw training snapshot is not present")
    previous = active_paths()
    activate_paths(_install(tmp_path, BUNDLED))
    try:
        result = run(make_executor(), load(name))
        assert tuple(result.values["8"][0][0].shape)[1:] == (32, 32, 3)
    finally:
        activate_paths(previous)
