"""comfy.comfy_types (IO, ComfyNodeABC, CheckLazyMixin, InputTypeDict) and the versioned comfy_api names
packs import; a V1 node written against them, and V3 hooks (fingerprint_inputs) run through the executor."""
from __future__ import annotations

import importlib

from engine import NodeRegistry
from engine.executor import Executor


def test_io_compares_like_comfyuis_type_strings():
    from comfy.comfy_types import IO
    from comfy.comfy_types.node_typing import IO as IO2

    assert IO is IO2 and IO.ANY == "*" and str(IO.IMAGE) == "IMAGE"
    assert IO.ANY == "LATENT" and IO.IMAGE == "IMAGE" and IO.IMAGE != "MASK"
    assert IO.NUMBER == "INT" and IO.NUMBER == "FLOAT" and IO.NUMBER != "STRING"
    assert {IO.INT: 1}["INT"] == 1  # hashes as its string


def test_versioned_comfy_api_names_are_the_same_api():
    latest = importlib.import_module("comfy_api.latest")
    for name in ("comfy_api.v0_0_2", "comfy_api.v0_0_1"):
        module = importlib.import_module(name)
        assert module.io is latest.io and module.ComfyExtension is latest.ComfyExtension
    assert importlib.import_module("comfy_api.latest._io").ComfyNode is latest.io.ComfyNode
    assert importlib.import_module("comfy_api.latest._ui").PreviewText is latest.ui.PreviewText


def _v1_lazy_node():
    from comfy.comfy_types import IO, CheckLazyMixin, ComfyNodeABC, InputTypeDict

    class Pick(CheckLazyMixin, ComfyNodeABC):
        CALLS: list[str] = []

        @classmethod
        def INPUT_TYPES(cls) -> InputTypeDict:  # noqa: N802
            return {"required": {"first": (IO.INT, {"default": 3}), "second": (IO.ANY, {"lazy": True})}}

        RETURN_TYPES = (IO.INT,)
        FUNCTION = "run"
        CATEGORY = "test"
        OUTPUT_NODE = True

        def run(self, first, second):
            Pick.CALLS.append("run")
            return {"ui": {"value": [first + second]}, "result": (first + second,)}

    return Pick


def test_v1_node_written_with_comfy_types_runs_and_check_lazy_mixin_asks_for_the_lazy_input():
    registry = NodeRegistry()
    registry.register(_v1_lazy_node(), "Pick")
    prompt = {"1": {"class_type": "Pick", "inputs": {"first": 2, "second": 0}},
              "2": {"class_type": "Pick", "inputs": {"first": 1, "second": ["1", 0]}}}
    result = Executor(registry).run(prompt, run_id="t")
    assert result.status == "success", result.failures
    assert result.outputs["2"] == {"value": [3]}


def test_v3_fingerprint_inputs_is_is_changed_and_reruns_when_it_changes():
    from comfy_api.latest import io

    state = {"token": 1, "runs": 0}

    class Stamp(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="Stamp", is_output_node=True, inputs=[io.String.Input("name", default="x")],
                             outputs=[io.String.Output()])

        @classmethod
        def fingerprint_inputs(cls, name):
            return state["token"]

        @classmethod
        def execute(cls, name):
            state["runs"] += 1
            return io.NodeOutput(name, ui={"text": [name]})

    class Plain(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id="Plain", outputs=[io.Int.Output()])

        @classmethod
        def execute(cls):
            return io.NodeOutput(1)

    assert hasattr(Stamp, "IS_CHANGED") and not hasattr(Plain, "IS_CHANGED")
    assert not hasattr(Plain, "VALIDATE_INPUTS")
    registry = NodeRegistry()
    registry.register(Stamp, "Stamp")
    executor = Executor(registry)
    prompt = {"1": {"class_type": "Stamp", "inputs": {"name": "a"}}}
    for _ in range(2):
        assert executor.run(prompt, run_id="r").status == "success"
    assert state["runs"] == 1  # same fingerprint: cached
    state["token"] = 2
    again = executor.run(prompt, run_id="r")
    assert again.status == "success" and state["runs"] == 2 and again.outputs["1"] == {"text": ["a"]}
