"""SaveLatent / LoadLatent: `.latent` files in ComfyUI's safetensors format, written and read back through
a workflow, and files built here the way ComfyUI writes them (with and without the version marker)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine import INT, LATENT, Input, NodeRegistry, Output, node
from engine.executor import Executor
from nodes import latent_file_nodes
from nodes.latent_file_nodes import LoadLatent


@node("TestNoiseLatent", category="test")
class NoiseLatent:
    inputs = (Input("seed", INT, default=0, min=0, max=1000),)
    outputs = (Output(LATENT),)

    def run(self, seed):
        return ({"samples": torch.randn(2, 4, 5, 7, generator=torch.Generator().manual_seed(seed))},)


@pytest.fixture
def paths(tmp_path):
    from engine import FolderPaths, activate_paths, active_paths

    previous = active_paths()
    folders = FolderPaths(tmp_path)
    folders.ensure_dirs()
    activate_paths(folders)
    yield folders
    activate_paths(previous)


def registry() -> NodeRegistry:
    reg = NodeRegistry()
    for name, cls in latent_file_nodes.NODE_CLASS_MAPPINGS.items():
        reg.register(cls, name)
    reg.register(NoiseLatent)
    return reg


def test_save_latent_then_load_latent_round_trips_through_workflows(paths):
    prompt = {"1": {"class_type": "TestNoiseLatent", "inputs": {"seed": 3}},
              "2": {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0], "filename_prefix": "latents/rt"}}}
    ex = Executor(registry())
    result = ex.run(prompt, extra_data={"extra_pnginfo": {"workflow": {"nodes": []}}})
    assert result.ok, result.failures or result.validation.response()
    assert result.outputs["2"] == {"latents": [{"filename": "rt_00001_.latent", "subfolder": "latents",
                                                "type": "output"}]}
    written = paths.output / "latents" / "rt_00001_.latent"
    with safe_open(str(written), framework="pt") as f:
        assert set(f.keys()) == {"latent_tensor", "latent_format_version_0"}
        assert f.get_tensor("latent_format_version_0").numel() == 0
        meta = f.metadata()
    assert json.loads(meta["prompt"]) == prompt and json.loads(meta["workflow"]) == {"nodes": []}
    # A second save counts on, as SaveImage does.
    ex.run({**prompt, "1": {"class_type": "TestNoiseLatent", "inputs": {"seed": 4}}})
    assert (paths.output / "latents" / "rt_00002_.latent").is_file()

    shutil.copy(written, paths.input / "cached.latent")
    assert "cached.latent" in registry().object_info()["LoadLatent"]["input"]["required"]["latent"][0]
    (loaded,) = LoadLatent().run("cached.latent")
    expected = NoiseLatent().run(3)[0]["samples"]
    assert loaded["samples"].dtype == torch.float32 and torch.equal(loaded["samples"], expected)


def test_reads_files_written_in_comfyuis_format(paths):
    samples = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)).half()
    save_file({"latent_tensor": samples, "latent_format_version_0": torch.tensor([])},
              str(paths.input / "comfy.latent"), metadata={"prompt": "{}"})
    (got,) = LoadLatent().run("comfy.latent")
    assert torch.equal(got["samples"], samples.float())
    # Files from before the version marker hold latents x 0.18215: they are scaled back.
    save_file({"latent_tensor": samples.float()}, str(paths.input / "legacy.latent"))
    (legacy,) = LoadLatent().run("legacy.latent")
    torch.testing.assert_close(legacy["samples"], samples.float() / 0.18215)


def test_missing_or_foreign_latent_files_are_clear_errors(paths):
    result = Executor(registry()).run({
        "1": {"class_type": "LoadLatent", "inputs": {"latent": "nope.latent"}},
        "2": {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0]}}})
    assert result.status == "invalid"
    assert "Invalid latent file: nope.latent" in json.dumps(result.validation.response())
    save_file({"x": torch.zeros(1)}, str(paths.input / "other.latent"))
    with pytest.raises(ValueError, match="no 'latent_tensor'"):
        LoadLatent().run("other.latent")
