"""Small fake nodes for engine tests: numbers, text, lists, lazy switches, async waits, failures."""
from __future__ import annotations

import asyncio
import time

from engine import ANY, BOOLEAN, COMBO, FLOAT, INT, STRING, Input, NodeRegistry, Output, RunContext, node

CALLS: list[str] = []  # class names in call order; tests clear it


@node("Const", category="test")
class Const:
    """An integer constant."""
    inputs = (Input("value", INT, default=0, min=-1000, max=1000),)
    outputs = (Output(INT, name="value"),)

    def run(self, value):
        CALLS.append("Const")
        return (value,)


@node("Add", category="test")
class Add:
    inputs = (Input("a", INT), Input("b", INT, default=0, min=-10**9, max=10**9))
    outputs = (Output(INT),)

    def run(self, a, b):
        CALLS.append("Add")
        return (a + b,)


@node("Scale", category="test")
class Scale:
    inputs = (Input("x", "FLOAT,INT"), Input("factor", FLOAT, default=1.0, min=0.0, max=10.0),
              Input("mode", COMBO, options=["mul", "div"], default="mul"),
              Input("enabled", BOOLEAN, default=True))
    outputs = (Output(FLOAT),)

    def run(self, x, factor, mode, enabled):
        CALLS.append("Scale")
        if not enabled:
            return (float(x),)
        return (x * factor if mode == "mul" else x / factor,)


@node("Text", category="test")
class Text:
    inputs = (Input("text", STRING, default="", multiline=True),)
    outputs = (Output(STRING),)

    def run(self, text):
        CALLS.append("Text")
        return (text,)


@node("Sink", category="test", output_node=True)
class Sink:
    """Shows any value in its ui output."""
    inputs = (Input("value", ANY),)
    outputs = ()

    def run(self, value):
        CALLS.append("Sink")
        return {"ui": {"value": [value]}}


@node("Fail", category="test")
class Fail:
    inputs = (Input("x", INT),)
    outputs = (Output(INT),)

    def run(self, x):
        CALLS.append("Fail")
        raise ValueError(f"cannot handle {x}")


@node("Slow", category="test")
class Slow:
    """Reports progress for `steps` steps of `delay` seconds each."""
    inputs = (Input("x", INT), Input("steps", INT, default=5, min=1, max=1000),
              Input("delay", FLOAT, default=0.01, min=0.0, max=10.0))
    outputs = (Output(INT),)

    def run(self, x, steps, delay, ctx: RunContext):
        CALLS.append("Slow")
        for i in range(steps):
            time.sleep(delay)
            ctx.progress(i + 1, steps)
        return (x,)


@node("AsyncWait", category="test")
class AsyncWait:
    inputs = (Input("x", INT), Input("delay", FLOAT, default=0.2, min=0.0, max=10.0))
    outputs = (Output(INT),)

    async def run(self, x, delay):
        CALLS.append("AsyncWait")
        await asyncio.sleep(delay)
        return (x,)


class Switch:
    """A ComfyUI V1 lazy switch: evaluates only the branch it picks."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pick_a": ("BOOLEAN", {"default": True}),
                             "a": ("INT", {"lazy": True}), "b": ("INT", {"lazy": True})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "switch"
    CATEGORY = "test"

    def check_lazy_status(self, pick_a, a=None, b=None):
        return ["a"] if pick_a and a is None else (["b"] if not pick_a and b is None else [])

    def switch(self, pick_a, a=None, b=None):
        CALLS.append("Switch")
        return (a if pick_a else b,)


class Range:
    """V1 OUTPUT_IS_LIST: emits 0..n-1 as a list."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"default": 3, "min": 0, "max": 100})}}
    RETURN_TYPES = ("INT",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "run"

    def run(self, n):
        CALLS.append("Range")
        return (list(range(n)),)


class SumList:
    """V1 INPUT_IS_LIST: receives whole lists."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("INT",)}}
    RETURN_TYPES = ("INT",)
    INPUT_IS_LIST = True
    FUNCTION = "run"

    def run(self, values):
        CALLS.append("SumList")
        return (sum(values),)


class Random:
    """NOT_IDEMPOTENT: never shared, never cached across ids."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {"default": 0})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    NOT_IDEMPOTENT = True

    def run(self, x):
        CALLS.append("Random")
        return (x,)


class Changing:
    """IS_CHANGED returns a version from the outside world (a dict the test controls)."""
    VERSION = {"v": 0, "nan": False, "raise": False}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {"default": 0})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def IS_CHANGED(cls, x):
        if cls.VERSION["raise"]:
            raise RuntimeError("cannot tell")
        return float("nan") if cls.VERSION["nan"] else cls.VERSION["v"]

    def run(self, x):
        CALLS.append("Changing")
        return (x,)


class Even:
    """VALIDATE_INPUTS: only even numbers."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"default": 0, "min": 0, "max": 10})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def VALIDATE_INPUTS(cls, n):
        return True if n % 2 == 0 else f"{n} is odd"

    def run(self, n):
        return (n,)


class Combo2:
    """The newer ("COMBO", {"options": [...]}) form, and a hidden UNIQUE_ID."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"choice": ("COMBO", {"options": ["x", "y"]})},
                "hidden": {"unique_id": "UNIQUE_ID"}}
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"

    def run(self, choice, unique_id):
        CALLS.append("Combo2")
        return (f"{choice}@{unique_id}",)


V1_NODES = {"Switch": Switch, "Range": Range, "SumList": SumList, "Random": Random, "Changing": Changing,
            "Even": Even, "Combo2": Combo2}
TYPED_NODES = [Const, Add, Scale, Text, Sink, Fail, Slow, AsyncWait]


def make_registry() -> NodeRegistry:
    reg = NodeRegistry()
    for cls in TYPED_NODES:
        reg.register(cls, pack="tests")
    for name, cls in V1_NODES.items():
        reg.register(cls, name, pack="tests")
    return reg


def chain(n: int, start: int = 1) -> dict:
    """Const -> Add x n -> Sink, as an API-format workflow."""
    wf = {"0": {"class_type": "Const", "inputs": {"value": start}}}
    for i in range(1, n + 1):
        wf[str(i)] = {"class_type": "Add", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    wf["out"] = {"class_type": "Sink", "inputs": {"value": [str(n), 0]}}
    return wf
