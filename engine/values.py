"""Input values: link detection, widget coercion (INT/FLOAT/STRING/BOOLEAN/COMBO), short reprs.

Coercion is stricter than ComfyUI's on purpose: "false" is False (ComfyUI's bool("false") is True),
20.5 is not an INT, NaN is not a FLOAT. Each failure says what was received and what was expected.
"""
from __future__ import annotations

import math
from typing import Any

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class CoercionError(ValueError):
    pass


def is_link(value: Any) -> bool:
    """ComfyUI's link test: a 2-list `[str node id, int output index]`."""
    return (isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], (int, float)) and not isinstance(value[1], bool))


def is_blocker(value: Any) -> bool:
    """An execution blocker: any object whose class sets `blocks_execution = True` (ComfyUI's
    `comfy_execution.graph.ExecutionBlocker` in compat/ is one). A consumer of it is not called."""
    return getattr(type(value), "blocks_execution", False) is True


def coerce(spec: Any, value: Any) -> Any:
    """Convert a constant to the input's declared widget type, or raise CoercionError."""
    kind = spec.type_name
    if kind == "INT":
        return _to_int(value)
    if kind == "FLOAT":
        return _to_float(value)
    if kind == "BOOLEAN":
        return _to_bool(value)
    if kind == "STRING":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise CoercionError(f"{short_repr(value)} is not a string")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError(f"{value!r} is a boolean, not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            value = _str_to_float(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise CoercionError(f"{short_repr(value)} is not an integer")


def _str_to_float(value: str) -> float:
    try:
        return float(value.strip())
    except ValueError:
        raise CoercionError(f"{short_repr(value)} is not a number") from None


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise CoercionError(f"{value!r} is a boolean, not a number")
    if isinstance(value, str):
        value = _str_to_float(value)
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    raise CoercionError(f"{short_repr(value)} is not a finite number")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise CoercionError(f"{short_repr(value)} is not a boolean (use true or false)")


def short_repr(value: Any, limit: int = 120) -> str:
    """A one-line description of any value: tensors by shape and dtype, long text cut."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (str, bytes)):
        dtype = getattr(value, "dtype", "")
        return f"{type(value).__name__}(shape={list(shape)}, dtype={dtype})"
    if isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {short_repr(v, 40)}" for k, v in list(value.items())[:6])
        text = "{" + inner + (", ..." if len(value) > 6 else "") + "}"
    elif isinstance(value, (list, tuple)) and len(value) > 8:
        text = f"{type(value).__name__} of {len(value)} items"
    else:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ in user code must not hide the real error
            text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
