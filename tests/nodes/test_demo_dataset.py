"""The demo dataset and its independent checker: splits, captions, and the checker's accuracy on clean data."""
from __future__ import annotations

import random

import numpy as np
import pytest

from nodes.demo import checker, dataset


def test_held_out_combinations_never_appear_in_training_scenes():
    rng = random.Random(0)
    scenes = [dataset.random_scene(rng) for _ in range(4000)]
    assert not any((s.colour, s.kind, s.background) in dataset.HELD_OUT for s in scenes)
    # ...yet every colour/kind pair and every background is still seen in training.
    assert {(s.colour, s.kind) for s in scenes} == {(c, k) for c in dataset.COLOURS for k in dataset.KINDS}
    assert {s.background for s in scenes} == set(dataset.COLOURS)
    assert len(dataset.HELD_OUT) == len(dataset.COLOURS) * len(dataset.KINDS)


def test_split_sizes_and_background_differs_from_shape():
    train, held = dataset.all_combinations(False), dataset.all_combinations(True)
    n_colours, n_kinds, n_sizes = len(dataset.COLOURS), len(dataset.KINDS), len(dataset.SIZES)
    assert len(train) + len(held) == n_kinds * n_colours * (n_colours - 1) * n_sizes
    assert len(held) == len(dataset.HELD_OUT) * n_sizes
    assert all(colour != background for _, colour, background, _ in train + held)


def test_caption_names_every_attribute():
    scene = dataset.Scene("triangle", "red", "white", "small", (0.5, 0.5), 0.2)
    assert scene.caption == "a small red triangle on a white background"
    colour, kind, background = sorted(dataset.HELD_OUT)[0]
    assert dataset.Scene(kind, colour, background, "small", (0.5, 0.5), 0.2).held_out


def test_render_is_deterministic_and_uses_the_palette():
    scene = dataset.place(random.Random(3), "square", "blue", "yellow", "large")
    a = np.asarray(dataset.render(scene, 64))
    b = np.asarray(dataset.render(scene, 64))
    assert a.shape == (64, 64, 3) and np.array_equal(a, b)
    assert tuple(a[0, 0]) == dataset.COLOURS["yellow"]
    cy, cx = (int(v * 64) for v in reversed(scene.centre))
    assert tuple(a[cy, cx]) == dataset.COLOURS["blue"]


def test_square_fills_its_box_circle_and_triangle_less():
    fills = {}
    for kind in dataset.KINDS:
        scene = dataset.Scene(kind, "black", "white", "large", (0.5, 0.5), 0.3)
        fills[kind] = checker.read_image(dataset.render(scene, 64)).fill
    assert fills["square"] > 0.95
    assert fills["circle"] == pytest.approx(np.pi / 4, abs=0.04)
    assert fills["triangle"] == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("resolution", [64, 32])
def test_checker_reads_the_dataset_itself(resolution):
    rng = random.Random(resolution)
    scenes = [dataset.random_scene(rng, held_out=i % 2 == 0) for i in range(150)]
    readings = [checker.read_image(dataset.render(s, resolution)) for s in scenes]
    for attr, key in (("background", "background"), ("colour", "colour"), ("kind", "kind")):
        agree = np.mean([getattr(r, key) == getattr(s, attr) for r, s in zip(readings, scenes, strict=True)])
        assert agree >= 0.99, f"{attr}: {agree:.3f}"


def test_checker_accepts_float_arrays_and_reports_no_shape_on_a_blank_image():
    blank = np.full((64, 64, 3), 0.5, dtype=np.float32)
    blank[:] = np.array(dataset.COLOURS["green"]) / 255.0
    reading = checker.read_image(blank)
    assert reading.background == "green" and reading.kind is None and reading.colour is None


def test_held_out_prompts_are_reproducible_and_held_out():
    a, b = dataset.held_out_prompts(40, seed=1), dataset.held_out_prompts(40, seed=1)
    assert a == b
    assert all(s.held_out for s in a)
    assert len({s.caption for s in a}) >= 30


def _training_captions(n: int = 3000) -> list[tuple[dataset.Scene, str]]:
    rng = random.Random(5)
    return [(s, dataset.random_caption(s, rng)) for s in (dataset.random_scene(rng) for _ in range(n))]


def test_training_captions_vary_and_always_name_colour_kind_and_background():
    pairs = _training_captions()
    words = {w for _, c in pairs for w in c.replace(",", " ").replace(":", " ").split()}
    assert {"big", "large", "little", "small", "picture", "simple", "flat"} <= words
    assert len({c for _, c in pairs}) > 1000
    no_size = 0
    for scene, caption in pairs:
        tokens = caption.replace(",", " ").replace(":", " ").split()
        assert scene.colour in tokens and scene.kind in tokens and scene.background in tokens, caption
        sizes = [w for w in tokens if w in {"big", "large", "little", "small"}]
        assert sizes in ([], [w for w in dataset.SIZE_WORDS[scene.size] if w in sizes][:1]), caption
        no_size += not sizes
    assert 0.25 < no_size / len(pairs) < 0.55  # the size word is optional (SIZE_WORD_PROB)


def test_held_out_phrasings_never_occur_in_training():
    # A held-out template filled in any way is never produced by the training caption generator.
    train = {c for _, c in _training_captions(20000)}
    rng = random.Random(9)
    for _ in range(500):
        scene = dataset.random_scene(rng)
        caption = dataset.random_caption(scene, rng, dataset.HELD_OUT_TEMPLATES, neutral_prob=0.0)
        assert caption not in train
        # ...and no training template can produce it for any size word / lead-in.
        for template in dataset.TRAIN_TEMPLATES:
            for size_word in ("", *dataset.SIZE_WORDS[scene.size]):
                for lead in ("", *dataset.NEUTRAL_LEADS):
                    assert caption != dataset.phrase(template, scene.colour, scene.kind, scene.background,
                                                     size_word, lead)


def test_evaluation_splits_are_reproducible_held_out_and_phrased_as_named():
    for split in dataset.EVAL_SPLITS:
        a, b = dataset.evaluation_prompts(split, 32), dataset.evaluation_prompts(split, 32)
        assert a == b and all(s.held_out for s, _ in a)
    size_words = {"big", "large", "little", "small"}
    no_size = dataset.evaluation_prompts("no size word", 32)
    assert not any(size_words & set(c.replace(",", " ").split()) for _, c in no_size)
    assert "a blue triangle on a white background" == dataset.phrase(dataset.TRAIN_TEMPLATES[0], "blue",
                                                                     "triangle", "white")
    with pytest.raises(ValueError, match="unknown evaluation split"):
        dataset.evaluation_prompts("nope", 1)
