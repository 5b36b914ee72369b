"""custom_nodes/example_pack: ImageAdjust pinned against PIL's ImageEnhance, TextToNumber's parsing, and
both nodes in a workflow run by the Executor after loading the pack like any other."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from engine import FLOAT, IMAGE, INT, Input, NodeRegistry, Output, node
from engine.events import ListSink, Progress
from engine.executor import Executor
from engine.plugins import load_packs

ROOT = Path(__file__).resolve().parents[2]


@node("GradientSource", category="test")
class GradientSource:
    """A deterministic [B,H,W,3] image batch."""
    inputs = (Input("batch", INT, default=2, min=1, max=8),)
    outputs = (Output(IMAGE),)

    def run(self, batch):
        g = torch.Generator().manual_seed(batch)
        return (torch.rand(batch, 16, 24, 3, generator=g),)


@node("ShowValues", category="test", output_node=True)
class ShowValues:
    inputs = (Input("image", IMAGE, optional=True), Input("number", FLOAT, optional=True, force_input=True),
              Input("whole", INT, optional=True, force_input=True))
    outputs = ()

    def run(self, image=None, number=None, whole=None):
        shown = {"number": [number], "whole": [whole]}
        if image is not None:
            shown["mean"] = [float(image.mean())]
        return {"ui": shown}


@pytest.fixture(scope="module")
def pack():
    registry = NodeRegistry()
    registry.register(GradientSource, pack="test")
    registry.register(ShowValues, pack="test")
    report = load_packs([ROOT / "custom_nodes"], registry, disable_all=True, whitelist=["example_pack"])
    assert report.get("example_pack").state == "loaded", report.get("example_pack").traceback
    import sys
    return registry, sys.modules["diffgraph_packs.example_pack"]


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image.clamp(0, 1) * 255).round().to(torch.uint8).numpy())


def from_pil(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)


def test_both_declaration_styles_load_from_the_pack(pack):
    registry, _ = pack
    assert registry.pack_of("ImageAdjust") == registry.pack_of("TextToNumber") == "example_pack"
    info = registry.object_info()
    assert info["ImageAdjust"]["input"]["required"]["contrast"][1]["default"] == 1.0
    assert info["TextToNumber"]["output"] == ["INT", "FLOAT"]
    assert info["TextToNumber"]["display_name"] == "Text to Number"


@pytest.mark.parametrize("enhancer, key", [(ImageEnhance.Brightness, "brightness"),
                                           (ImageEnhance.Contrast, "contrast"),
                                           (ImageEnhance.Color, "saturation")])
@pytest.mark.parametrize("factor", [0.0, 0.5, 1.7])
def test_adjustments_match_pil_image_enhance(pack, enhancer, key, factor):
    _, module = pack
    image = from_pil(to_pil(torch.rand(20, 30, 3, generator=torch.Generator().manual_seed(3))))
    want = from_pil(enhancer(to_pil(image)).enhance(factor))
    got = module.image_adjust.adjust(image, **{key: factor})
    # PIL works in 8 bits (and rounds the contrast mean to an integer); we work in float
    assert (got - want).abs().max() <= 1.5 / 255


def test_gamma_and_identity_follow_the_formula(pack):
    _, module = pack
    image = torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(module.image_adjust.adjust(image), image)
    assert torch.allclose(module.image_adjust.adjust(image, gamma=2.2), image ** (1 / 2.2))


@pytest.mark.parametrize("text, value", [("42", 42.0), (" 7.5 ", 7.5), ("1,234,567.25", 1234567.25),
                                         ("-1e-3", -0.001), ("steps: 30", 30.0), ("50%", 0.5),
                                         ("1_000", 1000.0), ("cfg=7.5, seed=3", 7.5), (".5", 0.5)])
def test_text_to_number_parses_what_text_nodes_produce(pack, text, value):
    _, module = pack
    assert module.parse_number(text) == pytest.approx(value)


def test_text_to_number_rounds_half_away_and_reports_or_defaults_on_bad_text(pack):
    _, module = pack
    node_obj = module.TextToNumber()
    assert node_obj.convert("2.5", "raise", 0.0) == (3, 2.5)
    assert node_obj.convert("-2.5", "raise", 0.0) == (-3, -2.5)
    assert node_obj.convert("no digits", "use default", 4.0) == (4, 4.0)
    for bad in ("no digits", "inf", "nan"):
        with pytest.raises(ValueError):
            node_obj.convert(bad, "raise", 0.0)


def test_a_workflow_with_both_nodes_runs_reports_progress_and_never_mutates_inputs(pack):
    registry, _ = pack
    prompt = {"1": {"class_type": "GradientSource", "inputs": {"batch": 3}},
              "2": {"class_type": "ImageAdjust", "inputs": {"image": ["1", 0], "brightness": 0.5, "contrast": 1.0,
                                                            "saturation": 1.0, "gamma": 1.0}},
              "3": {"class_type": "TextToNumber", "inputs": {"text": "seed: 12.5", "on_error": "raise",
                                                             "default": 0.0}},
              "4": {"class_type": "ShowValues", "inputs": {"image": ["2", 0], "number": ["3", 1], "whole": ["3", 0]}},
              "5": {"class_type": "ShowValues", "inputs": {"image": ["1", 0]}}}
    sink = ListSink()
    result = Executor(registry).run(prompt, run_id="ex", sink=sink)
    assert result.status == "success", result.failures or result.validation.response()
    source_mean = result.outputs["5"]["mean"][0]
    assert result.outputs["4"]["mean"][0] == pytest.approx(source_mean * 0.5, rel=1e-6)
    assert result.outputs["4"]["number"] == [12.5] and result.outputs["4"]["whole"] == [13]
    assert [(e.node, e.value, e.max) for e in sink.events if isinstance(e, Progress)] == [
        ("2", 1, 3), ("2", 2, 3), ("2", 3, 3)]
