"""CLIP text encoding: tokenizer ids, ComfyUI's emphasis parsing (a table), 75-token windows, weighted
encoding and clip skip pinned against the transformers reference model, textual-inversion embeddings,
and the conditioning nodes."""
from __future__ import annotations

import copy
import sys

import pytest
import torch
from safetensors.torch import save_file
from sd_helpers import loaded, reference, sandbox_paths

from nodes.conditioning_nodes import CLIPTextEncode, ConditioningCombine, ConditioningSetArea, ConditioningZeroOut
from nodes.loader_nodes import CLIPSetLastLayer
from nodes.sd.prompt import prompt_weights
from nodes.sd.text import clip_tokenizer, tokenize, word_ids

BOS, EOS = 49406, 49407
CAT = [49406, 320, 1125, 539, 320, 2368, 49407]
LONG_WORD = "supercalifragilisticexpialidocious"  # 9 tokens: long enough to be split across windows


@pytest.fixture
def sd_paths(tmp_path):
    yield from sandbox_paths(tmp_path)


def test_tokenizer_is_built_offline_without_importing_the_clip_package():
    tok = clip_tokenizer()
    assert tok("a photo of a cat").input_ids == CAT
    padded = tok("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert len(padded) == 77 and padded[7:] == [EOS] * 70
    assert len(tok) == 49408
    for word in ("CAT,", LONG_WORD, "日本語", "😀", "&amp;", "Ｆｕｌｌ", "don't", "(x)", "l" * 200):
        assert word_ids(tok)(word) == tok(word).input_ids[1:-1]
    assert "clip" not in sys.modules and "torchvision" not in sys.modules


# ComfyUI's token_weights() on each prompt, worked out by hand from its rules.
EMPHASIS_TABLE = [
    ("a photo", [("a photo", 1.0)]),
    ("a (b) c", [("a ", 1.0), ("b", 1.1), (" c", 1.0)]),
    ("((b))", [("b", 1.1 * 1.1)]),
    ("(b:1.5)", [("b", 1.5)]),
    ("((b:1.5))", [("b", 1.5)]),  # an explicit weight replaces, it does not multiply
    ("(b:1.5) (c)", [("b", 1.5), (" ", 1.0), ("c", 1.1)]),
    ("(a (b:1.3) c:0.8)", [("a ", 0.8), ("b", 1.3), (" c", 0.8)]),
    ("[b]", [("[b]", 1.0)]),  # ComfyUI gives square brackets no weight
    ("\\(b\\)", [("(b)", 1.0)]),
    ("(a\\(b\\):1.2)", [("a(b)", 1.2)]),
    ("(b:x)", [("b:x", 1.1)]),  # not a number: plain emphasis, text kept
    ("(:1.2)", [(":1.2", 1.1)]),  # a colon at position 0 is not a weight
    ("(unclosed", [("(unclosed", 1.0)]),
    ("a) b", [("a) b", 1.0)]),
    ("", []),
]


@pytest.mark.parametrize("text,expected", EMPHASIS_TABLE)
def test_emphasis_weights_follow_comfyui(text, expected):
    got = prompt_weights(text)
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected], abs=1e-12)


def test_weighted_prompt_tokens_carry_their_weights():
    _, clip, _ = loaded()
    (window,) = tokenize(clip, "a (photo:1.3) of [a] cat")
    assert len(window) == 77
    assert window[:4] == [(BOS, 1.0), (320, 1.0), (1125, 1.3), (539, 1.0)]
    assert [t for t, _ in window[4:7]] == clip_tokenizer()("[a]").input_ids[1:-1]
    assert window[7:9] == [(2368, 1.0), (EOS, 1.0)] and window[9:] == [(EOS, 1.0)] * 68


def test_long_prompts_are_split_into_75_token_windows():
    _, clip, _ = loaded()
    windows = tokenize(clip, " ".join(["cat"] * 80))
    assert [len(w) for w in windows] == [77, 77]
    assert [t for t, _ in windows[0]] == [BOS] + [2368] * 75 + [EOS]
    assert [t for t, _ in windows[1]] == [BOS] + [2368] * 5 + [EOS] * 71
    # A short word that does not fit moves whole to the next window; a long one (>= 8 tokens) is split.
    short = tokenize(clip, " ".join(["cat"] * 74) + " photorealistic")
    assert [t for t, _ in short[0]][-3:] == [2368, EOS, EOS] and [t for t, _ in short[1]][1:3] == [1153, 16157]
    long = tokenize(clip, " ".join(["cat"] * 70) + " " + LONG_WORD)
    word = clip_tokenizer()(LONG_WORD).input_ids[1:-1]
    assert [t for t, _ in long[0]][71:77] == word[:5] + [EOS]
    assert [t for t, _ in long[1]][1:6] == word[5:] + [EOS]


def _reference_hidden(ids: list[list[int]], layer: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    ref = reference()[2]
    with torch.no_grad():
        out = ref(torch.tensor(ids), output_hidden_states=True)
        hidden = out.last_hidden_state if layer == -1 else ref.final_layer_norm(out.hidden_states[layer])
    return hidden, out.pooler_output


def test_clip_text_encode_matches_the_reference_encoder():
    _, clip, _ = loaded()
    (cond,) = CLIPTextEncode().run("a photo of a cat", clip)
    hidden, pooled = _reference_hidden([CAT + [EOS] * 70])
    assert len(cond) == 1 and cond[0][0].shape == (1, 77, 32)
    assert (cond[0][0] - hidden).abs().max() <= 1e-5
    assert (cond[0][1]["pooled_output"] - pooled).abs().max() <= 1e-5


def test_clip_skip_uses_the_normalised_earlier_layer():
    _, clip, _ = loaded()
    skipped = CLIPSetLastLayer().run(clip, -2)[0]
    (cond,) = CLIPTextEncode().run("a photo of a cat", skipped)
    hidden, pooled = _reference_hidden([CAT + [EOS] * 70], layer=-2)
    assert (cond[0][0] - hidden).abs().max() <= 1e-5
    assert (cond[0][1]["pooled_output"] - pooled).abs().max() <= 1e-5  # pooled stays the last layer's
    beyond = CLIPSetLastLayer().run(clip, -24)[0]  # deeper than the model: ComfyUI uses the last layer
    assert torch.equal(CLIPTextEncode().run("a photo of a cat", beyond)[0][0][0], CLIPTextEncode().run("a photo of a cat", clip)[0][0][0])


def test_weights_push_tokens_away_from_the_empty_prompt():
    _, clip, _ = loaded()
    (cond,) = CLIPTextEncode().run("a (photo:1.3) of a ((cat))", clip)
    empty = [BOS] + [EOS] * 76
    hidden, pooled = _reference_hidden([CAT + [EOS] * 70, empty])
    weights = torch.ones(77, 1)
    weights[2], weights[5] = 1.3, 1.1 * 1.1
    expected = (hidden[0] - hidden[1]) * weights + hidden[1]
    assert (cond[0][0][0] - expected).abs().max() <= 1e-5
    assert (cond[0][1]["pooled_output"] - pooled[:1]).abs().max() <= 1e-5


def test_long_prompt_conditioning_concatenates_windows():
    _, clip, _ = loaded()
    (cond,) = CLIPTextEncode().run(" ".join(["cat"] * 80), clip)
    hidden, pooled = _reference_hidden([[BOS] + [2368] * 75 + [EOS], [BOS] + [2368] * 5 + [EOS] * 71])
    assert cond[0][0].shape == (1, 154, 32)
    assert (cond[0][0][0] - torch.cat([hidden[0], hidden[1]])).abs().max() <= 1e-5
    assert (cond[0][1]["pooled_output"] - pooled[:1]).abs().max() <= 1e-5


def test_textual_inversion_embeddings_are_spliced_in(sd_paths):
    _, clip, _ = loaded()
    vectors = torch.randn(2, 32, generator=torch.Generator().manual_seed(5))
    folder = sd_paths.base / "models" / "embeddings"
    folder.mkdir(parents=True)
    save_file({"emb_params": vectors}, str(folder / "mystyle.safetensors"))
    (cond,) = CLIPTextEncode().run("a embedding:mystyle cat", clip)
    ref = copy.deepcopy(reference()[2])  # oracle: the same vectors placed in two token rows
    with torch.no_grad():
        ref.embeddings.token_embedding.weight[[10, 11]] = vectors
        expected = ref(torch.tensor([[BOS, 320, 10, 11, 2368, EOS] + [EOS] * 71])).last_hidden_state
    assert (cond[0][0] - expected).abs().max() <= 1e-5
    # A trailing comma is not part of the name; it is tokenized as text.
    (comma,) = CLIPTextEncode().run("a embedding:mystyle, cat", clip)
    with torch.no_grad():
        expected = ref(torch.tensor([[BOS, 320, 10, 11, 267, 2368, EOS] + [EOS] * 70])).last_hidden_state
    assert (comma[0][0] - expected).abs().max() <= 1e-5
    # A missing embedding is dropped with a warning, as in ComfyUI.
    (missing,) = CLIPTextEncode().run("a embedding:nothere cat", clip)
    (plain,) = CLIPTextEncode().run("a cat", clip)
    assert torch.equal(missing[0][0], plain[0][0])


def test_conditioning_nodes_build_new_lists_and_leave_inputs_alone():
    cond = torch.randn(1, 77, 32)
    pooled = torch.randn(1, 32)
    a = [[cond, {"pooled_output": pooled}]]
    b = [[cond * 2, {"pooled_output": pooled * 2}]]
    snapshot = (cond.clone(), pooled.clone(), dict(a[0][1]))
    combined = ConditioningCombine().run(a, b)[0]
    assert len(combined) == 2 and combined[0][0] is cond
    area = ConditioningSetArea().run(a, 256, 128, 64, 32, 0.7)[0]
    assert area[0][1]["area"] == (16, 32, 4, 8) and area[0][1]["strength"] == 0.7
    assert area[0][1]["set_area_to_bounds"] is False and area[0][1]["pooled_output"] is pooled
    zero = ConditioningZeroOut().run(a)[0]
    assert torch.count_nonzero(zero[0][0]) == 0 and torch.count_nonzero(zero[0][1]["pooled_output"]) == 0
    assert torch.equal(cond, snapshot[0]) and torch.equal(pooled, snapshot[1]) and a[0][1] == snapshot[2]
    assert "area" not in a[0][1] and len(a) == 1
