"""Conditioning nodes: CLIPTextEncode, ConditioningCombine, ConditioningSetArea, ConditioningZeroOut.

CONDITIONING is ComfyUI's list of `[tensor [1, 77·k, D], {"pooled_output": [1, D], ...}]` pairs;
nodes return new lists with copied option dicts and never touch the tensors they were given.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from engine import CLIP, CONDITIONING, FLOAT, INT, STRING, Input, Output, active_paths, node

from .model_types import ClipModel
from .sd.text import encode_text, load_embedding

log = logging.getLogger(__name__)
MAX_RESOLUTION = 16384
EMBEDDING_SUFFIXES = ("", ".safetensors", ".pt", ".bin", ".pth")
Conditioning = list[list[Any]]


def embedding_lookup(clip: ClipModel) -> Any:
    """`embedding:name` resolver over models/embeddings (None when missing; an unreadable file is
    reported and skipped, as ComfyUI does)."""
    width = clip.text_encoder.config.hidden_size

    def find(name: str) -> torch.Tensor | None:
        for suffix in EMBEDDING_SUFFIXES:
            try:
                path = active_paths().get_full_path("embeddings", name + suffix)
            except (KeyError, ValueError):
                return None
            if path is not None:
                try:
                    return load_embedding(path, width)
                except (ValueError, OSError) as exc:
                    log.warning("embedding:%s could not be used: %s", name, exc)
                    return None
        return None
    return find


@node("CLIPTextEncode", category="conditioning", display_name="CLIP Text Encode (Prompt)")
class CLIPTextEncode:
    """Encodes a text prompt with CLIP (ComfyUI's (word:1.2) weights, 75-token chunks, clip skip)."""

    inputs = (Input("text", STRING, multiline=True, extra={"dynamicPrompts": True},
                    tooltip="The text to be encoded."),
              Input("clip", CLIP, tooltip="The CLIP model used for encoding the text."))
    outputs = (Output(CONDITIONING, "CONDITIONING",
                      "A conditioning containing the embedded text used to guide the diffusion model."),)

    def run(self, text: str, clip: ClipModel) -> tuple[Conditioning]:
        if clip is None:
            raise RuntimeError("ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader "
                               "node your checkpoint does not contain a valid clip or text encoder model.")
        cond, pooled = encode_text(clip, text, embedding_lookup(clip))
        return ([[cond, {"pooled_output": pooled}]],)


@node("ConditioningCombine", category="conditioning", display_name="Conditioning (Combine)")
class ConditioningCombine:
    """Joins two conditionings into one list (the sampler uses every entry)."""

    inputs = (Input("conditioning_1", CONDITIONING), Input("conditioning_2", CONDITIONING))
    outputs = (Output(CONDITIONING, "CONDITIONING"),)

    def run(self, conditioning_1: Conditioning, conditioning_2: Conditioning) -> tuple[Conditioning]:
        return (list(conditioning_1) + list(conditioning_2),)


@node("ConditioningSetArea", category="conditioning", display_name="Conditioning (Set Area)")
class ConditioningSetArea:
    """Restricts a conditioning to a rectangle (pixels) with a strength."""

    inputs = (Input("conditioning", CONDITIONING),
              Input("width", INT, default=64, min=64, max=MAX_RESOLUTION, step=8),
              Input("height", INT, default=64, min=64, max=MAX_RESOLUTION, step=8),
              Input("x", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("y", INT, default=0, min=0, max=MAX_RESOLUTION, step=8),
              Input("strength", FLOAT, default=1.0, min=0.0, max=10.0, step=0.01))
    outputs = (Output(CONDITIONING, "CONDITIONING"),)

    def run(self, conditioning: Conditioning, width: int, height: int, x: int, y: int,
            strength: float) -> tuple[Conditioning]:
        # ComfyUI stores the area in latent cells: (height, width, y, x) // 8.
        values = {"area": (height // 8, width // 8, y // 8, x // 8), "strength": strength,
                  "set_area_to_bounds": False}
        return ([[t[0], {**t[1], **values}] for t in conditioning],)


@node("ConditioningZeroOut", category="advanced/conditioning", display_name="ConditioningZeroOut")
class ConditioningZeroOut:
    """Replaces the embeddings (and pooled output) with zeros, keeping shapes and options."""

    inputs = (Input("conditioning", CONDITIONING),)
    outputs = (Output(CONDITIONING, "CONDITIONING"),)

    def run(self, conditioning: Conditioning) -> tuple[Conditioning]:
        out = []
        for tensor, options in conditioning:
            options = dict(options)
            if options.get("pooled_output") is not None:
                options["pooled_output"] = torch.zeros_like(options["pooled_output"])
            out.append([torch.zeros_like(tensor), options])
        return (out,)


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (CLIPTextEncode, ConditioningCombine, ConditioningSetArea,
                                                       ConditioningZeroOut)}
NODE_DISPLAY_NAME_MAPPINGS = {name: cls.DISPLAY_NAME for name, cls in NODE_CLASS_MAPPINGS.items()}
