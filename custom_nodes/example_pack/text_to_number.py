"""TextToNumber: read a number out of a STRING (a classic ComfyUI V1 node class).

Useful after nodes that produce text (a prompt generator, a file reader, an LLM): "1,024",
" 7.5 ", "1e-3", "steps: 30" and "50%" all give numbers. INT is rounded half away from zero.
"""
from __future__ import annotations

import math
import re

# Thousands separators only where they are unambiguous ("1,234,567.5"); "1,5" is not a number here.
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
_FIRST_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(text: str) -> float:
    """The number `text` holds, or the first number inside it; ValueError when there is none."""
    s = text.strip().replace("_", "")
    if _GROUPED.match(s):
        s = s.replace(",", "")
    percent = s.endswith("%")
    try:
        value = float(s[:-1] if percent else s) / (100.0 if percent else 1.0)
    except ValueError:
        match = _FIRST_NUMBER.search(s.replace(",", ""))
        if match is None:
            raise ValueError(f"no number in {text!r}") from None
        value = float(match.group(0))
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def round_half_away(value: float) -> int:
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


class TextToNumber:
    """A V1 class: INPUT_TYPES / RETURN_TYPES / FUNCTION, exactly as a ComfyUI pack writes it."""

    @classmethod
    def INPUT_TYPES(cls):  # noqa: N802 (ComfyUI's protocol name)
        return {"required": {
            "text": ("STRING", {"default": "0", "multiline": False}),
            "on_error": (["raise", "use default"], {"default": "raise"}),
            "default": ("FLOAT", {"default": 0.0, "min": -1e15, "max": 1e15, "step": 0.01}),
        }}

    RETURN_TYPES = ("INT", "FLOAT")
    RETURN_NAMES = ("int", "float")
    FUNCTION = "convert"
    CATEGORY = "utils/text"
    DESCRIPTION = "Read a number out of text; INT rounds half away from zero."

    def convert(self, text: str, on_error: str, default: float) -> tuple[int, float]:
        try:
            value = parse_number(text)
        except ValueError:
            if on_error != "use default":
                raise
            value = float(default)
        return (round_half_away(value), value)
