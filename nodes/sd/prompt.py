"""ComfyUI's prompt syntax: emphasis weights and the 77-token windows of a CLIP text encoder.

`(word)` multiplies the weight by 1.1 per level, `(word:1.3)` sets it, `\\(` and `\\)` are literal
parentheses. As in ComfyUI (and unlike A1111), square brackets carry no weight: `[word]` is plain
text. Words are tokenized one at a time; windows hold 75 tokens between BOS and EOS, a word of 8 or
more tokens may be split across windows, a shorter one moves whole to the next window.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

EMPHASIS = 1.1
MAX_WORD_TOKENS = 8  # ComfyUI's max_word_length
WINDOW = 77
_ESCAPED_CLOSE, _ESCAPED_OPEN = "\0\1", "\0\2"


def escape_important(text: str) -> str:
    return text.replace("\\)", _ESCAPED_CLOSE).replace("\\(", _ESCAPED_OPEN)


def unescape_important(text: str) -> str:
    return text.replace(_ESCAPED_CLOSE, ")").replace(_ESCAPED_OPEN, "(")


def split_parentheses(text: str) -> list[str]:
    """Top-level segments: plain runs and balanced `( ... )` groups (an unclosed group runs to the end)."""
    out: list[str] = []
    current, depth = "", 0
    for char in text:
        if char == "(":
            if depth == 0:
                if current:
                    out.append(current)
                current = "("
            else:
                current += char
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                out.append(current + ")")
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        out.append(current)
    return out


def parse_weights(text: str, weight: float = 1.0) -> list[tuple[str, float]]:
    """(segment, weight) pairs of an (escaped) prompt, following ComfyUI's `token_weights`."""
    out: list[tuple[str, float]] = []
    for segment in split_parentheses(text):
        if len(segment) >= 2 and segment[0] == "(" and segment[-1] == ")":
            inner, inner_weight = segment[1:-1], weight * EMPHASIS
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    inner_weight = float(inner[colon + 1:])
                    inner = inner[:colon]
                except ValueError:
                    pass
            out += parse_weights(inner, inner_weight)
        else:
            out.append((segment, weight))
    return out


def prompt_weights(text: str) -> list[tuple[str, float]]:
    """The user-facing parse: escapes handled, literal parentheses restored in each segment."""
    return [(unescape_important(s), w) for s, w in parse_weights(escape_important(text))]


def tokenize_weighted(text: str, encode_word: Callable[[str], list[Any]], bos: int = 49406, eos: int = 49407,
                      pad: int = 49407, embedding: Callable[[str], list[Any] | None] | None = None
                      ) -> list[list[tuple[Any, float]]]:
    """Windows of 77 (token, weight) pairs, as ComfyUI's SDTokenizer.tokenize_with_weights.

    `encode_word(word)` returns the word's token ids without BOS/EOS. `embedding(name)` returns a
    textual-inversion's vectors for `embedding:name` words, or None: the word is dropped with a
    warning, as in ComfyUI (trailing commas are tried off and tokenized as text).
    A token is an int id or, for embeddings, a 1-D tensor.
    """
    groups: list[list[tuple[Any, float]]] = []
    for segment, weight in parse_weights(escape_important(text)):
        for word in unescape_important(segment).replace("\n", " ").split(" "):
            if not word:
                continue
            if word.startswith("embedding:") and embedding is not None:
                vectors, word = _find_embedding(word[len("embedding:"):].strip("\n"), embedding)
                if vectors is not None:
                    groups.append([(v, weight) for v in vectors])
                if not word:
                    continue
            groups.append([(t, weight) for t in encode_word(word)])
    return _pack_windows(groups, bos, eos, pad)


def _find_embedding(name: str, embedding: Callable[[str], Any]) -> tuple[Any, str]:
    """(vectors or None, leftover text): `embedding:name,` finds `name` and leaves "," to tokenize."""
    vectors = embedding(name)
    leftover = ""
    if vectors is None and name.rstrip(",") != name:
        stripped = name.rstrip(",")
        vectors, leftover = embedding(stripped), name[len(stripped):]
    if vectors is None:
        log.warning("warning, embedding:%s does not exist, ignoring", name)
    return vectors, leftover


def _pack_windows(groups: list[list[tuple[Any, float]]], bos: int, eos: int, pad: int) -> list[list[tuple[Any, float]]]:
    windows: list[list[tuple[Any, float]]] = [[(bos, 1.0)]]
    batch = windows[0]
    for group in groups:
        is_large = len(group) >= MAX_WORD_TOKENS
        while group:
            if len(group) + len(batch) > WINDOW - 1:
                room = WINDOW - len(batch) - 1
                if is_large:  # split the long word: fill this window, carry the rest
                    batch.extend(group[:room])
                    batch.append((eos, 1.0))
                    group = group[room:]
                else:  # close this window and move the whole word on
                    batch.append((eos, 1.0))
                    batch.extend([(pad, 1.0)] * room)
                batch = [(bos, 1.0)]
                windows.append(batch)
            else:
                batch.extend(group)
                group = []
    batch.append((eos, 1.0))
    batch.extend([(pad, 1.0)] * (WINDOW - len(batch)))
    return windows
