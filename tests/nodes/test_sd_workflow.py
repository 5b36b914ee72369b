"""The SD nodes inside the engine: a loader -> encode -> empty latent -> VAEDecode -> SaveImage workflow
through the executor (PNG chunks, caching), and ComfyUI's example workflows against our node schemas."""
from __future__ import annotations

import json

import pytest
from PIL import Image
from sd_helpers import TINY_NAME, sandbox_paths

from engine import ANY, Input, NodeRegistry, NodeSchema, node
from engine.events import ListSink
from engine.executor import Executor
from nodes import conditioning_nodes, ema_nodes, image_nodes, latent_nodes, loader_nodes
from tests.workflow_pairs import DRIFT, OWN, SHARED, needs_shared

SD_MODULES = (loader_nodes, conditioning_nodes, latent_nodes, image_nodes, ema_nodes)
SEEN: list[str] = []


@pytest.fixture
def sd_paths(tmp_path):
    yield from sandbox_paths(tmp_path)


@node("TestShowShape", category="test", output_node=True)
class ShowShape:
    """Makes a CONDITIONING an output, so the encoder runs without a sampler."""

    inputs = (Input("value", ANY),)
    outputs = ()

    def run(self, value):
        SEEN.append("show")
        return {"ui": {"shape": [list(value[0][0].shape)]}}


def _registry() -> NodeRegistry:
    registry = NodeRegistry()
    for module in SD_MODULES:
        added, refused = registry.register_module(module)
        assert added and not refused
    registry.register(ShowShape)
    return registry


def _prompt(text: str) -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": TINY_NAME}},
        "10": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["4", 1], "stop_at_clip_layer": -2}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["10", 0]}},
        "11": {"class_type": "TestShowShape", "inputs": {"value": ["6", 0]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48, "batch_size": 2}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "wf/tiny"}},
    }


def test_small_workflow_runs_through_the_executor(sd_paths):
    executor = Executor(_registry())
    prompt = _prompt("a (photo:1.2) of a cat")
    extra = {"extra_pnginfo": {"workflow": {"nodes": [], "links": []}}}
    sink = ListSink()
    result = executor.run(prompt, run_id="r1", sink=sink, extra_data=extra)
    assert result.status == "success", result.failures
    assert result.outputs["11"] == {"shape": [[1, 77, 32]]}
    images = result.outputs["9"]["images"]
    assert [i["filename"] for i in images] == ["tiny_00001_.png", "tiny_00002_.png"]
    with Image.open(sd_paths.output / "wf" / images[0]["filename"]) as png:
        assert png.size == (64, 48)
        assert json.loads(png.info["prompt"]) == prompt
        assert json.loads(png.info["workflow"]) == extra["extra_pnginfo"]["workflow"]
    # A new prompt text re-runs the encoder and its output only; the checkpoint is not reloaded.
    SEEN.clear()
    sink2 = ListSink()
    again = executor.run(_prompt("a dog"), run_id="r2", sink=sink2, extra_data=extra)
    assert again.status == "success" and SEEN == ["show"]
    ran = {e.node for e in sink2.events if type(e).__name__ == "Executing" and e.node}
    assert "6" in ran and "4" not in ran and "8" not in ran


def test_missing_checkpoint_is_a_validation_error(sd_paths):
    prompt = _prompt("x")
    prompt["4"]["inputs"]["ckpt_name"] = "v1-5-pruned-emaonly.ckpt"
    result = Executor(_registry()).run(prompt, run_id="bad")
    assert result.status == "invalid"
    errors = result.validation.node_errors["4"]["errors"]
    assert errors[0]["type"] == "value_not_in_list"


@pytest.mark.parametrize("folder", [OWN, pytest.param(SHARED, marks=needs_shared)], ids=["own", "shared"])
def test_comfyui_example_workflows_match_our_node_schemas(folder):
    classes = {name: cls for m in SD_MODULES for name, cls in m.NODE_CLASS_MAPPINGS.items()}
    checked = 0
    for path in sorted(folder.glob("*.api.json")):
        for nid, entry in json.loads(path.read_text()).items():
            cls = classes.get(entry["class_type"])
            if cls is None:
                continue
            schema = NodeSchema.from_class(cls, entry["class_type"])
            expected = {i.name for i in schema.inputs if i.section != "hidden"}
            given = set(entry["inputs"]) - {"choose file to upload"}  # a UI widget, ignored by ComfyUI
            if (path.name.removesuffix(".api.json"), nid) in DRIFT:
                expected.discard("grow_mask_by")  # exported before ComfyUI added this input (README)
            assert given == expected, (path.name, nid, given ^ expected)
            for name, value in entry["inputs"].items():
                spec = schema.input(name)
                if spec is None or isinstance(value, list) or name in ("ckpt_name", "vae_name", "image"):
                    continue
                if spec.choices is not None:
                    assert value in spec.choices, (path.name, nid, name, value)
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    assert spec.options.get("min", value) <= value <= spec.options.get("max", value)
            checked += 1
    assert checked >= (60 if folder == SHARED else 18)


def test_text_to_image_with_the_builtin_sampler(sd_paths):
    from engine.plugins import load_builtin

    registry = NodeRegistry()
    load_builtin(registry)
    if "KSampler" not in registry:
        pytest.skip("KSampler (nodes/sampling_nodes.py) is not available")
    prompt = _prompt("a cat")
    del prompt["11"]
    prompt["7"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}}
    prompt["3"] = {"class_type": "KSampler", "inputs": {
        "model": ["4", 0], "seed": 1, "steps": 2, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
        "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0], "denoise": 1.0}}
    prompt["8"]["inputs"]["samples"] = ["3", 0]
    result = Executor(registry).run(prompt, run_id="t2i")
    assert result.status == "success", result.failures
    assert len(result.outputs["9"]["images"]) == 2


def test_a_symlinked_checkpoint_that_is_listed_also_loads(sd_paths, tmp_path_factory):
    """Regression: a model shared by symlink (one models folder for several tools) was listed in the
    combo but refused by the loader ('not found ... (available: shared.safetensors)')."""
    from engine import active_paths

    elsewhere = tmp_path_factory.mktemp("other-tool") / "models"
    elsewhere.mkdir()
    (sd_paths.base / "models" / "checkpoints" / TINY_NAME).rename(elsewhere / "real.safetensors")
    (sd_paths.base / "models" / "checkpoints" / "shared.safetensors").symlink_to(elsewhere / "real.safetensors")
    (sd_paths.base / "models" / "checkpoints" / "linked-dir").symlink_to(elsewhere, target_is_directory=True)
    listed = active_paths().get_filename_list("checkpoints")
    assert "shared.safetensors" in listed and "linked-dir/real.safetensors" in listed
    executor = Executor(_registry())
    for name in ("shared.safetensors", "linked-dir/real.safetensors"):
        prompt = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": name}},
                  "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
                  "11": {"class_type": "TestShowShape", "inputs": {"value": ["6", 0]}}}
        result = executor.run(prompt, run_id=name, sink=ListSink())
        assert result.status == "success", result.failures
    # names a client sends are still checked: nothing outside the folder by '..' or an absolute path
    for bad in ("../../other-tool/models/real.safetensors", str(elsewhere / "real.safetensors"), "a\x00b"):
        assert active_paths().get_full_path("checkpoints", bad) is None
