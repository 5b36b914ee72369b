"""The offline CLIP tokenizer and ComfyUI-compatible SD1 text encoding (windows, weights, clip skip).

The tokenizer is built from CLIP's MIT-licensed BPE file shipped by the `openai-clip` package, found
with `importlib.util.find_spec` so the package (whose `__init__` imports torchvision) is never
imported. Encoding follows ComfyUI: each 77-token window is encoded, weighted tokens are pushed away
from the encoding of an empty prompt, windows are concatenated, pooled output is the first window's.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .prompt import tokenize_weighted

log = logging.getLogger(__name__)
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2  # CLIP's vocabulary: 256 bytes x 2 + merges + 2 specials = 49408
BOS, EOS = 49406, 49407


def bpe_path() -> Path:
    """CLIP's BPE merges file inside the installed `openai-clip` package (not imported)."""
    spec = importlib.util.find_spec("clip")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / BPE_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"CLIP's {BPE_FILE} was not found: install the openai-clip package "
                            f"(pip install --no-deps openai-clip)")


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level BPE: printable bytes map to themselves, the rest to unused code points.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


@functools.lru_cache(maxsize=1)
def clip_tokenizer() -> Any:
    """transformers CLIPTokenizer (max length 77, pad = EOS 49407) built from the BPE file; cached."""
    from transformers import CLIPTokenizer

    lines = gzip.decompress(bpe_path().read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:N_MERGES + 1]]
    base = list(_bytes_to_unicode().values())
    tokens = base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


@functools.lru_cache(maxsize=1)
def _word_tokenizer() -> Any:
    """A private copy of the Rust tokenizer behind `clip_tokenizer()`, never padded or truncated."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(clip_tokenizer().backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def word_ids(tokenizer: Any) -> Callable[[str], list[int]]:
    """A function giving one word's token ids without BOS/EOS (ComfyUI tokenizes word by word).

    For our CLIP tokenizer it calls a private Rust tokenizer: the same ids as
    `tokenizer(word).input_ids[1:-1]`, without the wrapper's per-call padding/truncation state,
    which other callers can leave behind and which is not safe across threads.
    """
    if tokenizer is clip_tokenizer():
        backend = _word_tokenizer()
        return lambda word: list(backend.encode(word, add_special_tokens=False).ids)
    return lambda word: list(tokenizer(word)["input_ids"][1:-1])


def tokenize(clip: Any, text: str, embedding: Callable[[str], Any] | None = None) -> list[list[tuple[Any, float]]]:
    """ComfyUI's `clip.tokenize(text)` for SD1: windows of 77 (token, weight) pairs."""
    pad = getattr(clip, "options", {}).get("pad_token", EOS)  # SD2's OpenCLIP pads with 0
    return tokenize_weighted(text, word_ids(clip.tokenizer), BOS, EOS, pad, embedding=embedding)


def _final_norm(text_encoder: Any) -> Any:
    # transformers >= 5.6 flattened CLIPTextModel; older versions nest it under `text_model`.
    return getattr(text_encoder, "text_model", text_encoder).final_layer_norm


def _token_rows(windows: list[list[tuple[Any, float]]]) -> tuple[torch.Tensor, dict[tuple[int, int], torch.Tensor]]:
    ids, vectors = [], {}
    for i, window in enumerate(windows):
        row = []
        for j, (tok, _w) in enumerate(window):
            if isinstance(tok, torch.Tensor):  # a textual-inversion vector: placeholder id, patched in
                vectors[(i, j)] = tok
                row.append(0)
            else:
                row.append(int(tok))
        ids.append(row)
    return torch.tensor(ids, dtype=torch.long), vectors


def run_text_encoder(text_encoder: Any, ids: torch.Tensor, layer_idx: int = -1,
                     vectors: dict[tuple[int, int], torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden [N,77,D], pooled [N,D]) for token ids; `layer_idx` < -1 is clip skip (ComfyUI's CLIPSetLastLayer).

    The hidden state is `final_layer_norm(hidden_states[layer_idx])`; pooled is taken at the first
    EOS of the last layer's normalised output, whatever the clip skip.
    """
    param = next(text_encoder.parameters())
    embed = getattr(text_encoder, "text_model", text_encoder).embeddings.token_embedding
    handle = None
    if vectors:
        def patch(_module: Any, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
            output = output.clone()
            for (i, j), vec in vectors.items():
                output[i, j] = vec.to(output.dtype)
            return output
        handle = embed.register_forward_hook(patch)
    try:
        with torch.inference_mode():
            out = text_encoder(input_ids=ids.to(param.device), output_hidden_states=True)
    finally:
        if handle is not None:
            handle.remove()
    layers = len(out.hidden_states) - 1
    if layer_idx == -1 or abs(layer_idx) > layers:
        hidden = out.last_hidden_state
    else:
        with torch.inference_mode():
            hidden = _final_norm(text_encoder)(out.hidden_states[layer_idx])
    return hidden.float().cpu(), out.pooler_output.float().cpu()


def encode_windows(clip: Any, windows: list[list[tuple[Any, float]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """ComfyUI's encode_token_weights: (cond [1, 77*windows, D], pooled [1, D]) on the CPU, fp32."""
    weighted = any(w != 1.0 for window in windows for _t, w in window)
    rows = list(windows)
    if weighted:  # the empty prompt, [BOS, EOS, pad...], anchors the weighting
        pad = getattr(clip, "options", {}).get("pad_token", EOS)
        rows.append([(BOS, 1.0), (EOS, 1.0)] + [(pad, 1.0)] * (len(windows[0]) - 2))
    ids, vectors = _token_rows(rows)
    hidden, pooled = run_text_encoder(clip.text_encoder, ids, clip.layer_idx, vectors)
    chunks = []
    for k, window in enumerate(windows):
        z = hidden[k].clone()
        if weighted:
            empty = hidden[-1]
            w = torch.tensor([wt for _t, wt in window], dtype=z.dtype)[:, None]
            z = torch.where(w != 1.0, (z - empty) * w + empty, z)
        chunks.append(z)
    return torch.cat(chunks, dim=0)[None], pooled[0:1]


def encode_text(clip: Any, text: str, embedding: Callable[[str], Any] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize and encode a prompt with ComfyUI's semantics; returns (cond, pooled)."""
    return encode_windows(clip, tokenize(clip, text, embedding))


def load_embedding(path: Path, width: int) -> torch.Tensor:
    """A textual-inversion embedding file's vectors [n, width] (A1111 / diffusers safetensors layouts)."""
    from .safetensors_io import StateDictSource

    with StateDictSource(path) as src:
        keys = src.keys()
        for key in ("emb_params", "clip_l", "string_to_param.*", "<embed>"):
            if key in keys:
                vec = src.tensor(key)
                break
        else:
            fits = [k for k, s in src.shapes().items() if s and s[-1] == width]
            if len(fits) != 1:
                raise ValueError(f"{path.name}: no embedding of width {width} found (keys: {keys[:5]})")
            vec = src.tensor(fits[0])
    vec = vec.float().reshape(-1, vec.shape[-1])
    if vec.shape[-1] != width:
        raise ValueError(f"{path.name}: embedding width {vec.shape[-1]} does not match the text encoder's {width}")
    return vec
