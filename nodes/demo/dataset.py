"""A synthetic captioned dataset of flat shapes, drawn with PIL: the demo model's training data.

A scene is one shape (circle, square, triangle) of one colour and size on a plain background of
another colour, at a random position. Some colour/shape/background combinations are held out of
training, so the tests can ask the trained model for combinations it never saw.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "orange": (245, 140, 20),
    "purple": (140, 50, 180),
}
KINDS: tuple[str, ...] = ("circle", "square", "triangle")
# Half-extent of the shape's box as a fraction of the image side, per size word.
SIZES: dict[str, tuple[float, float]] = {"small": (0.16, 0.2), "large": (0.27, 0.32)}
# (shape colour, kind, background) combinations never drawn for training: one background per
# colour/kind pair (24 of 168 scenes). Every pair, colour, kind and background is still seen elsewhere,
# so a held-out prompt asks for a combination the model never saw, built from parts it knows.
# (A first model held out whole colour/kind pairs instead; it drew the right colours but fell back to
# the shape it had seen with that colour: 44-56% kind agreement. See the closing note of issue 8.)
def _held_out_triples() -> frozenset[tuple[str, str, str]]:
    names = list(COLOURS)
    out = set()
    for ki, kind in enumerate(KINDS):
        for ci, colour in enumerate(names):
            out.add((colour, kind, names[(ci + 1 + 3 * ki) % len(names)]))  # offsets 1, 4, 7: never itself
    return frozenset(out)


HELD_OUT: frozenset[tuple[str, str, str]] = _held_out_triples()

# Caption variety (issue 16): a model trained on one template learns the template, not the words.
# Captions are built from a phrasing template, an optional size word (with synonyms) and an optional
# neutral lead-in that carries no information. {size} expands to "large " / "big " / "" and so on.
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "large": ("large", "big")}
NEUTRAL_LEADS: tuple[str, ...] = ("a picture of ", "an image of ", "a drawing of ", "simple ", "flat ",
                                  "a simple picture of ", "flat colours: ")
TRAIN_TEMPLATES: tuple[str, ...] = (
    "a {size}{colour} {kind} on a {bg} background",
    "{size}{colour} {kind}, {bg} background",
    "on a {bg} background, a {size}{colour} {kind}",
    "a {bg} background with a {size}{colour} {kind}",
    "a {size}{kind} in {colour} on a {bg} background",
    "a {size}{colour} {kind} on {bg}",
    "{size}{colour} {kind} on a {bg} background",
)
# Never used in training: new word orders and words the training captions never put in these places.
HELD_OUT_TEMPLATES: tuple[str, ...] = (
    "a {size}{colour} {kind} with a {bg} background",
    "{bg} background, a {size}{colour} {kind}",
    "the {size}{colour} {kind} on the {bg} background",
    "a {size}{colour} {kind} on a plain {bg} background",
    "{bg} background with a {size}{kind} in {colour}",
)
SIZE_WORD_PROB = 0.6  # training captions name the size this often
NEUTRAL_PROB = 0.25  # ...and start with a neutral lead-in this often


def phrase(template: str, colour: str, kind: str, background: str, size_word: str = "",
           lead: str = "") -> str:
    """Fill one phrasing template; `size_word` may be empty (no size named), `lead` a neutral lead-in."""
    text = template.format(size=f"{size_word} " if size_word else "", colour=colour, kind=kind, bg=background)
    if lead and not lead.endswith("of ") and text.startswith("a "):
        text = text[2:]  # "simple red circle ...", not "simple a red circle ..."
    return lead + text


def random_caption(scene: Scene, rng: random.Random, templates: tuple[str, ...] = TRAIN_TEMPLATES,
                   size_prob: float = SIZE_WORD_PROB, neutral_prob: float = NEUTRAL_PROB) -> str:
    """One varied caption for `scene`: a random template, size word (or none) and lead-in (or none)."""
    template = rng.choice(templates)
    size_word = rng.choice(SIZE_WORDS[scene.size]) if rng.random() < size_prob else ""
    lead = rng.choice(NEUTRAL_LEADS) if rng.random() < neutral_prob else ""
    return phrase(template, scene.colour, scene.kind, scene.background, size_word, lead)


SUPERSAMPLE = 4  # draw large, then downsample: anti-aliased edges like a real picture's


@dataclass(frozen=True)
class Scene:
    """One picture's content; `caption` is its prompt."""

    kind: str
    colour: str
    background: str
    size: str
    centre: tuple[float, float]  # fractions of width/height
    half: float  # half-extent, fraction of the side

    @property
    def caption(self) -> str:
        return f"a {self.size} {self.colour} {self.kind} on a {self.background} background"

    @property
    def held_out(self) -> bool:
        return (self.colour, self.kind, self.background) in HELD_OUT


def all_combinations(held_out: bool | None = None) -> list[tuple[str, str, str, str]]:
    """Every (kind, colour, background, size) with colour != background, optionally filtered by split."""
    out = []
    for kind in KINDS:
        for colour in COLOURS:
            for background in COLOURS:
                if background == colour:
                    continue
                if held_out is not None and ((colour, kind, background) in HELD_OUT) != held_out:
                    continue
                out.extend((kind, colour, background, size) for size in SIZES)
    return out


def random_scene(rng: random.Random, held_out: bool = False) -> Scene:
    """A scene drawn uniformly from the training split (or the held-out split)."""
    kind, colour, background, size = rng.choice(all_combinations(held_out))
    return place(rng, kind, colour, background, size)


def place(rng: random.Random, kind: str, colour: str, background: str, size: str) -> Scene:
    """Pick a size within the size word's range and a position that keeps the shape inside the frame."""
    lo, hi = SIZES[size]
    half = rng.uniform(lo, hi)
    margin = half + 0.04
    centre = (rng.uniform(margin, 1 - margin), rng.uniform(margin, 1 - margin))
    return Scene(kind, colour, background, size, centre, half)


def render(scene: Scene, resolution: int = 64) -> Image.Image:
    """Draw the scene as an RGB image of `resolution` x `resolution` pixels."""
    side = resolution * SUPERSAMPLE
    img = Image.new("RGB", (side, side), COLOURS[scene.background])
    draw = ImageDraw.Draw(img)
    cx, cy = scene.centre[0] * side, scene.centre[1] * side
    h = scene.half * side
    fill = COLOURS[scene.colour]
    if scene.kind == "circle":
        draw.ellipse((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif scene.kind == "square":
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
    elif scene.kind == "triangle":
        draw.polygon([(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)], fill=fill)
    else:
        raise ValueError(f"unknown shape kind {scene.kind!r}; expected one of {KINDS}")
    return img.resize((resolution, resolution), Image.Resampling.BOX)


def make_batch(
    rng: random.Random, count: int, resolution: int = 64, held_out: bool = False
) -> tuple[np.ndarray, list[Scene]]:
    """`count` random scenes as a float32 array [N, H, W, 3] in 0..1 and their Scene records."""
    scenes = [random_scene(rng, held_out) for _ in range(count)]
    images = np.stack([np.asarray(render(s, resolution), dtype=np.float32) / 255.0 for s in scenes])
    return images, scenes


def held_out_prompts(count: int, seed: int = 0) -> list[Scene]:
    """`count` distinct held-out combinations (cycling when count exceeds them), placed reproducibly."""
    rng = random.Random(seed)
    combos = all_combinations(held_out=True)
    rng.shuffle(combos)
    return [place(rng, *combos[i % len(combos)]) for i in range(count)]


# The three evaluation splits of `python -m nodes.demo.evaluate`, all on held-out colour/kind/background
# triples: the training phrasings, phrasings never used in training, and training phrasings with no size word.
EVAL_SPLITS: tuple[str, ...] = ("training phrasings", "held-out phrasings", "no size word")


def evaluation_prompts(split: str, count: int, seed: int = 0) -> list[tuple[Scene, str]]:
    """`count` (scene, caption) pairs of one evaluation split, reproducibly."""
    if split not in EVAL_SPLITS:
        raise ValueError(f"unknown evaluation split {split!r}; expected one of {EVAL_SPLITS}")
    rng = random.Random(f"{split}:{seed}")
    scenes = held_out_prompts(count, seed)
    if split == "training phrasings":
        return [(s, random_caption(s, rng, TRAIN_TEMPLATES, size_prob=1.0, neutral_prob=0.0)) for s in scenes]
    if split == "held-out phrasings":
        return [(s, random_caption(s, rng, HELD_OUT_TEMPLATES, size_prob=0.5, neutral_prob=0.0)) for s in scenes]
    return [(s, random_caption(s, rng, TRAIN_TEMPLATES, size_prob=0.0, neutral_prob=0.0)) for s in scenes]
