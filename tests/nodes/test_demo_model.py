"""The shipped demo model, judged through the real workflow path on prompts it never saw in training.

The default workflow (CheckpointLoaderSimple -> CLIPTextEncode -> KSampler -> VAEDecode) runs on
the engine's Executor once per held-out prompt; the independent checker reads each picture.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import FolderPaths, activate_paths, active_paths
from nodes.demo import dataset, evaluate, models, sample

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "models" / "checkpoints"
SHIPPED = CHECKPOINTS / "diffgraph-shapes.safetensors"
HELD_OUT_COUNT = 32


@pytest.fixture(scope="module")
def executor(tmp_path_factory):
    previous = active_paths()
    base = tmp_path_factory.mktemp("demo_base")
    activate_paths(FolderPaths(base, models={"checkpoints": [CHECKPOINTS]}))
    try:
        yield evaluate.make_executor()
    finally:
        activate_paths(previous)


@pytest.fixture(scope="module")
def held_out_images(executor):
    scenes = dataset.held_out_prompts(HELD_OUT_COUNT)
    return scenes, evaluate.generate(executor, scenes)


def test_shipped_checkpoint_is_small_and_in_the_original_layout():
    from safetensors import safe_open

    assert SHIPPED.is_file(), "models/checkpoints/diffgraph-shapes.safetensors must ship with the repository"
    assert SHIPPED.stat().st_size <= 20 * 2**20
    with safe_open(str(SHIPPED), "pt") as f:
        prefixes = {k.split(".")[0] for k in f.keys()}
    assert prefixes == {"model", "first_stage_model", "cond_stage_model"}


def test_default_workflow_is_the_ui_workflow_converted(executor):
    from engine.convert import convert_workflow, registry_node_info

    ui = json.loads((ROOT / "workflows" / "default.ui.json").read_text())
    converted = convert_workflow(ui, registry_node_info(executor.registry)).prompt
    assert converted == evaluate.load_default_workflow()


def test_default_workflow_runs_at_native_size(executor):
    wf = evaluate.load_default_workflow()
    result = executor.run(wf)
    assert result.ok, result.failures or result.validation.response()
    image = result.values["8"][0][0]
    batch = wf["5"]["inputs"]["batch_size"]
    assert tuple(image.shape) == (batch, models.RESOLUTION, models.RESOLUTION, 3)


def test_held_out_prompts_get_their_background_and_shape_colour(held_out_images):
    scenes, images = held_out_images
    assert len({s.caption for s in scenes}) >= 30 and all(s.held_out for s in scenes)
    scores = sample.score(images, scenes)
    assert scores["background"] >= 0.9, scores
    assert scores["colour"] >= 0.9, scores


def test_held_out_prompts_get_their_shape_kind(held_out_images):
    scenes, images = held_out_images
    assert sample.score(images, scenes)["kind"] >= 0.7


# Issue 16: prompts as people write them. Each split runs through the real default workflow (default
# sampler), on held-out colour/kind/background triples; the thresholds are the acceptance bar.
PHRASING_THRESHOLDS = {
    "held-out phrasings": {"background": 0.9, "colour": 0.9, "kind": 0.75},
    "no size word": {"background": 0.9, "colour": 0.9, "kind": 0.75},
}


@pytest.mark.parametrize("split", sorted(PHRASING_THRESHOLDS))
def test_prompts_phrased_differently_are_followed(executor, split):
    pairs = dataset.evaluation_prompts(split, HELD_OUT_COUNT)
    scenes, captions = [p[0] for p in pairs], [p[1] for p in pairs]
    assert len(set(captions)) >= 24 and all(s.held_out for s in scenes)
    scores = sample.score(evaluate.generate(executor, scenes, captions), scenes)
    for attribute, minimum in PHRASING_THRESHOLDS[split].items():
        assert scores[attribute] >= minimum, (split, scores)


def test_prompt_is_read_not_ignored(held_out_images):
    # Different prompts with the same seed must give different pictures.
    _, images = held_out_images
    assert np.abs(images[0] - images[1]).mean() > 0.05


def test_ema_blend_workflow_runs_when_the_raw_checkpoint_is_present(executor):
    wf = json.loads((ROOT / "workflows" / "ema_blend.json").read_text())
    if not (CHECKPOINTS / wf["10"]["inputs"]["ckpt_name"]).is_file():
        report = executor.validate(wf)
        assert set(report.node_errors) == {"10"}, report.response()  # only the missing raw file
        pytest.skip("the raw checkpoint is produced by `diffgraph train-demo --install`")
    result = executor.run(wf)
    assert result.ok, result.failures or result.validation.response()


def test_default_ui_workflow_tells_a_new_user_the_vocabulary():
    ui = json.loads((ROOT / "workflows" / "default.ui.json").read_text())
    notes = [n["widgets_values"][0] for n in ui["nodes"] if n["type"] == "Note"]
    assert len(notes) == 1
    words = set(notes[0].replace(",", " ").replace(".", " ").replace("/", " ").replace(":", " ").split())
    vocabulary = set(dataset.COLOURS) | set(dataset.KINDS) | {w for ws in dataset.SIZE_WORDS.values() for w in ws}
    assert vocabulary <= words, vocabulary - words


def test_a_prompt_with_unknown_words_still_gives_a_picture(executor):
    # README: words the model never saw give a picture, not an error (what it draws is not promised).
    scene = dataset.held_out_prompts(1)[0]
    images = evaluate.generate(executor, [scene], ["a photograph of a tabby cat asleep on a sofa"])
    assert images.shape == (1, models.RESOLUTION, models.RESOLUTION, 3)
    assert np.isfinite(images).all() and images.std() > 0.01
