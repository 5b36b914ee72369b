"""Small ComfyUI V1 fake nodes for the execution semantics ComfyUI's own test pack exercises:
lazy inputs left None, async check_lazy_status / VALIDATE_INPUTS, constants of non-widget types,
execution blockers and graph expansion."""
from __future__ import annotations

import asyncio

from engine import NodeRegistry

CALLS: list[tuple[str, object]] = []


class _V1:
    CATEGORY = "test"
    FUNCTION = "run"


class Num(_V1):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": -10**9, "max": 10**9})}}
    RETURN_TYPES = ("INT",)

    def run(self, value):
        CALLS.append(("Num", value))
        return (value,)


class Show(_V1):
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("*", {})}}
    RETURN_TYPES = ()

    @classmethod
    def VALIDATE_INPUTS(cls, input_types):
        return True

    def run(self, value):
        CALLS.append(("Show", value))
        return {"ui": {"value": [value]}}


class LazyNeverAsks(_V1):
    """check_lazy_status asks for nothing: the lazy input arrives as None."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"x": ("INT", {"lazy": True})}, "optional": {"y": ("INT", {"lazy": True})}}
    RETURN_TYPES = ("STRING",)

    def check_lazy_status(self, x=None, y=None):
        return []

    def run(self, x, y=None):
        return (f"x={x} y={y}",)


class AsyncLazySwitch(_V1):
    """An async check_lazy_status, awaited by the engine."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"pick_a": ("BOOLEAN", {"default": True}),
                             "a": ("INT", {"lazy": True}), "b": ("INT", {"lazy": True})}}
    RETURN_TYPES = ("INT",)

    async def check_lazy_status(self, pick_a, a=None, b=None):
        await asyncio.sleep(0)
        return ["a"] if pick_a else ["b"]

    def run(self, pick_a, a, b):
        CALLS.append(("AsyncLazySwitch", (a, b)))
        return (a if pick_a else b,)


class LazyRaises(_V1):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"lazy": True})}}
    RETURN_TYPES = ("INT",)

    async def check_lazy_status(self, a=None):
        raise RuntimeError("lazy check broke")

    def run(self, a):
        CALLS.append(("LazyRaises", a))
        return (a,)


class TakesAnything(_V1):
    """Inputs of non-widget types given as constants; VALIDATE_INPUTS decides what is acceptable."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"anything": ("*", {}), "flag": ("BOOL", {}), "mixed": ("IMAGE,FLOAT", {})}}
    RETURN_TYPES = ("STRING",)

    @classmethod
    def VALIDATE_INPUTS(cls, anything, flag, mixed, input_types=None):
        if anything == "reject me":
            return "anything must not be 'reject me'"
        return True

    def run(self, anything, flag, mixed):
        return (repr((anything, flag, mixed)),)


class AsyncValidated(_V1):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": 0, "max": 10})}}
    RETURN_TYPES = ("INT",)

    @classmethod
    async def VALIDATE_INPUTS(cls, value):
        await asyncio.sleep(0)
        return True if value % 2 == 0 else f"value {value} is odd"

    def run(self, value):
        return (value,)


class Gate(_V1):
    """Passes `value` on when open, else an ExecutionBlocker with `message` ("" means None: silent)."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {}), "open": ("BOOLEAN", {"default": True}),
                             "message": ("STRING", {"default": ""})}}
    RETURN_TYPES = ("INT",)

    def run(self, value, open, message):
        from comfy_execution.graph import ExecutionBlocker
        return (value if open else ExecutionBlocker(message or None),)


class ListWithBlocked(_V1):
    """A list output [1, blocker, 3] (the blocker silent, or with `message`)."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"message": ("STRING", {"default": ""})}}
    RETURN_TYPES = ("INT",)
    OUTPUT_IS_LIST = (True,)

    def run(self, message):
        from comfy_execution.graph_utils import ExecutionBlocker
        return ([1, ExecutionBlocker(message or None), 3],)


class Double(_V1):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}
    RETURN_TYPES = ("INT",)

    def run(self, value):
        CALLS.append(("Double", value))
        return (value * 2,)


class Collect(_V1):
    """INPUT_IS_LIST: called once with the whole list (blocked when any entry is a blocker)."""
    INPUT_IS_LIST = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}
    RETURN_TYPES = ("INT",)

    def run(self, value):
        CALLS.append(("Collect", list(value)))
        return (sum(value),)


class AddInt(_V1):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"min": -10**12, "max": 10**12}), "b": ("INT", {"min": -10**12, "max": 10**12})}}
    RETURN_TYPES = ("INT",)

    def run(self, a, b):
        return (a + b,)


class CountLoop(_V1):
    """sum(range(n)) as a for-loop built by expansion: each step expands into AddInt + the next step."""
    @classmethod
    def INPUT_TYPES(cls):
        big = {"min": 0, "max": 10**12}
        return {"required": {"i": ("INT", big), "n": ("INT", big), "acc": ("INT", big)}}
    RETURN_TYPES = ("INT",)

    def run(self, i, n, acc):
        if i >= n:
            return (acc,)
        from comfy_execution.graph_utils import GraphBuilder
        g = GraphBuilder()
        add = g.node("AddInt", a=acc, b=i)
        step = g.node("CountLoop", i=i + 1, n=n, acc=add.out(0))
        return {"result": (step.out(0),), "expand": g.finalize()}


class ExpandShow(_V1):
    """Expands into Double(value) plus an output node showing it; returns Double's output."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {})}}
    RETURN_TYPES = ("INT",)

    def run(self, value):
        from comfy_execution.graph_utils import GraphBuilder
        CALLS.append(("ExpandShow", value))
        g = GraphBuilder()
        d = g.node("Double", value=value)
        g.node("Show", value=d.out(0))
        return {"result": (d.out(0),), "expand": g.finalize()}


class ExpandCycle(_V1):
    """Expands into a node that needs this node's own output (`mode` self) or into two nodes that need
    each other (`mode` pair): both are cycles."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mode": (["self", "pair"],)}, "hidden": {"unique_id": "UNIQUE_ID"}}
    RETURN_TYPES = ("INT",)

    def run(self, mode, unique_id):
        from comfy_execution.graph_utils import GraphBuilder
        g = GraphBuilder()
        if mode == "self":
            d = g.node("Double", value=[unique_id, 0])
        else:
            a = g.node("AddInt", id="a", b=1)
            d = g.node("AddInt", id="b", a=a.out(0), b=1)
            a.set_input("a", d.out(0))
        return {"result": (d.out(0),), "expand": g.finalize()}


class WhoAmI(_V1):
    """Reports what DYNPROMPT says of its own id: (id, real, parent, display, class from get_node)."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("INT", {})}, "hidden": {"dynprompt": "DYNPROMPT", "unique_id": "UNIQUE_ID"}}
    RETURN_TYPES = ("STRING",)

    def run(self, tag, dynprompt, unique_id):
        CALLS.append(("WhoAmI", (unique_id, dynprompt.get_real_node_id(unique_id),
                                 dynprompt.get_parent_node_id(unique_id), dynprompt.get_display_node_id(unique_id),
                                 dynprompt.get_node(unique_id)["class_type"], dynprompt.has_node(unique_id),
                                 unique_id in dynprompt.all_node_ids(), sorted(dynprompt.get_original_prompt()))))
        return (str(tag),)


class ExpandWho(_V1):
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("INT", {})}}
    RETURN_TYPES = ("STRING",)

    def run(self, tag):
        from comfy_execution.graph_utils import GraphBuilder
        g = GraphBuilder()
        who = g.node("WhoAmI", tag=tag)
        return {"result": (who.out(0),), "expand": g.finalize()}


NODES = {cls.__name__: cls for cls in (Num, Show, LazyNeverAsks, AsyncLazySwitch, LazyRaises, TakesAnything,
                                       AsyncValidated, Gate, ListWithBlocked, Double, Collect, AddInt, CountLoop,
                                       ExpandShow, ExpandCycle, WhoAmI, ExpandWho)}


def make_registry(extra: dict[str, type] | None = None) -> NodeRegistry:
    reg = NodeRegistry()
    for name, cls in {**NODES, **(extra or {})}.items():
        reg.register(cls, name, pack="tests")
    return reg
