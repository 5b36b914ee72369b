"""ComfyUI's batch nodes (EmptyImage, ImageBatch, ImageInvert, SolidMask, RebatchImages, RebatchLatents,
LatentFromBatch, RepeatLatentBatch) run through the executor from a prompt, and their results are
pinned against formulas and torch's own bilinear resize (ComfyUI's common_upscale)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine import NodeRegistry
from engine.executor import Executor
from nodes import batch_nodes


@pytest.fixture(scope="module")
def executor():
    registry = NodeRegistry()
    added, refused = registry.register_module(batch_nodes)
    assert len(added) == 8 and not refused
    registry.register(_Source, "TestSource")
    return Executor(registry)


class _Source:
    """A test node handing out a tensor or latent kept in VALUES by key."""

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802
        return {"required": {"key": ("STRING", {"default": ""})}}

    RETURN_TYPES = ("*",)
    FUNCTION = "run"
    CATEGORY = "test"

    def run(self, key):
        return (VALUES[key],)


VALUES: dict[str, object] = {}


def run(executor, prompt, node):
    result = executor.run(prompt, run_id="b", targets=[node])
    assert result.status == "success", result.failures
    return result.values[node][0]


def test_empty_image_is_filled_with_the_rgb_of_color(executor):
    [image] = run(executor, {"1": {"class_type": "EmptyImage", "inputs": {"width": 5, "height": 3, "batch_size": 2,
                                                                          "color": 0xFF8000}}}, "1")
    assert image.shape == (2, 3, 5, 3)
    assert torch.allclose(image[1, 2, 4], torch.tensor([1.0, 128 / 255, 0.0]))


def test_image_batch_resizes_the_second_image_bilinear_to_the_first(executor):
    VALUES["a"], VALUES["b"] = torch.rand(1, 8, 8, 3), torch.rand(2, 4, 4, 3)
    prompt = {"1": {"class_type": "TestSource", "inputs": {"key": "a"}},
              "2": {"class_type": "TestSource", "inputs": {"key": "b"}},
              "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}}}
    [batch] = run(executor, prompt, "3")
    assert batch.shape == (3, 8, 8, 3)
    assert torch.equal(batch[0], VALUES["a"][0])
    expected = F.interpolate(VALUES["b"].movedim(-1, 1), size=(8, 8), mode="bilinear").movedim(1, -1)
    assert torch.allclose(batch[1:], expected, atol=1e-6)


def test_image_invert_and_solid_mask(executor):
    VALUES["img"] = torch.rand(1, 2, 2, 3)
    prompt = {"1": {"class_type": "TestSource", "inputs": {"key": "img"}},
              "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
              "3": {"class_type": "SolidMask", "inputs": {"value": 0.25, "width": 4, "height": 3}}}
    result = executor.run(prompt, run_id="c", targets=["2", "3"])
    assert result.status == "success", result.failures
    assert torch.allclose(result.values["2"][0][0], 1.0 - VALUES["img"])
    mask = result.values["3"][0][0]
    assert mask.shape == (1, 3, 4) and bool((mask == 0.25).all())


def test_rebatch_images_regroups_every_frame_into_batches_of_n(executor):
    VALUES["x"] = torch.arange(5.0).reshape(5, 1, 1, 1).expand(5, 2, 2, 3).clone()
    prompt = {"1": {"class_type": "TestSource", "inputs": {"key": "x"}},
              "2": {"class_type": "RebatchImages", "inputs": {"images": ["1", 0], "batch_size": 2}}}
    batches = run(executor, prompt, "2")  # a list output: one entry per batch
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    assert [b[:, 0, 0, 0].tolist() for b in batches] == [[0.0, 1.0], [2.0, 3.0], [4.0]]


def test_rebatch_latents_joins_same_size_latents_and_numbers_the_samples():
    node = batch_nodes.RebatchLatents()
    small = {"samples": torch.zeros(3, 4, 2, 2)}
    other = {"samples": torch.ones(2, 4, 2, 2)}
    big = {"samples": torch.zeros(1, 4, 3, 3)}
    [out] = node.run([small, other, big], [2])
    assert [o["samples"].shape[0] for o in out] == [2, 2, 1, 1]
    assert [o["batch_index"] for o in out] == [[0, 1], [2, 3], [4], [5]]
    assert out[1]["samples"][:, 0, 0, 0].tolist() == [0.0, 1.0]  # the third of `small`, then the first of `other`
    assert all("noise_mask" not in o for o in out)  # all-ones masks are dropped
    masked = {"samples": torch.zeros(2, 4, 2, 2), "noise_mask": torch.zeros(1, 1, 16, 16)}
    [out] = node.run([masked], [4])
    assert out[0]["noise_mask"].shape == (2, 1, 16, 16)


def test_latent_from_batch_clamps_and_keeps_mask_and_index():
    latent = {"samples": torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 4, 2, 2).clone(),
              "noise_mask": torch.arange(2.0).reshape(2, 1, 1, 1).expand(2, 1, 16, 16).clone()}
    [out] = batch_nodes.LatentFromBatch().run(latent, batch_index=3, length=5)
    assert out["samples"][:, 0, 0, 0].tolist() == [3.0] and out["batch_index"] == [3]
    assert out["noise_mask"][:, 0, 0, 0].tolist() == [1.0]  # the 2 masks repeated over the 4 samples
    [mid] = batch_nodes.LatentFromBatch().run(latent, batch_index=1, length=2)
    assert mid["samples"][:, 0, 0, 0].tolist() == [1.0, 2.0] and mid["batch_index"] == [1, 2]
    assert latent["samples"].shape[0] == 4 and "batch_index" not in latent  # the input is not changed


def test_repeat_latent_batch_repeats_samples_and_continues_batch_index():
    latent = {"samples": torch.arange(2.0).reshape(2, 1, 1, 1).expand(2, 4, 2, 2).clone(), "batch_index": [4, 5]}
    [out] = batch_nodes.RepeatLatentBatch().run(latent, amount=3)
    assert out["samples"][:, 0, 0, 0].tolist() == [0.0, 1.0] * 3
    assert out["batch_index"] == [4, 5, 6, 7, 8, 9]


def test_batch_nodes_carry_comfyuis_names_and_inputs():
    registry = NodeRegistry()
    registry.register_module(batch_nodes)
    info = registry.object_info()
    assert info["ImageBatch"]["display_name"] == "Batch Images" and info["ImageBatch"]["category"] == "image"
    assert info["RebatchLatents"]["output_is_list"] == [True]
    assert info["EmptyImage"]["input"]["required"]["color"][1]["display"] == "color"
    assert info["LatentFromBatch"]["input"]["required"]["batch_index"][1] == {"default": 0, "min": 0, "max": 63}
