"""Fake nodes for the Ray backend tests, copied into a test server's custom_nodes/ (the path users take):
the server and every Ray worker load them as a node pack.

`WhoAmI` shows the worker process that ran it; `SaveText` writes a file to the output folder and names it
in its ui output like SaveImage; `Burn` holds one core for `seconds` and reports progress (a cancel point).
"""
from __future__ import annotations

import os
import signal
import time

from engine import FLOAT, INT, STRING, Input, Output, active_paths, node


@node("Seed", category="test")
class Seed:
    inputs = (Input("value", INT, default=0, min=0, max=10**9),)
    outputs = (Output(INT, name="value"),)

    def run(self, value):
        return (value,)


@node("Burn", category="test")
class Burn:
    inputs = (Input("value", INT), Input("seconds", FLOAT, default=0.0, min=0.0, max=120.0))
    outputs = (Output(INT),)

    def run(self, value, seconds, ctx):
        end, step = time.perf_counter() + seconds, 0
        ctx.progress(0, 100)
        while time.perf_counter() < end:
            sum(range(2000))
            step += 1
            if step % 50 == 0:
                ctx.progress(min(99, int(100 * (1 - (end - time.perf_counter()) / max(seconds, 1e-9)))), 100)
        ctx.progress(100, 100)
        return (value,)


@node("WhoAmI", category="test", output_node=True)
class WhoAmI:
    inputs = (Input("value", INT),)
    outputs = ()

    def run(self, value, ctx):
        return {"ui": {"pid": [os.getpid()], "value": [value], "run": [ctx.run_id]}, "result": ()}


@node("SaveText", category="test", output_node=True)
class SaveText:
    inputs = (Input("value", INT), Input("filename_prefix", STRING, default="ray"))
    outputs = ()

    def run(self, value, filename_prefix):
        name = f"{filename_prefix}_00001_.txt"
        (active_paths().output / name).write_text(f"value {value} pid {os.getpid()}\n", encoding="utf-8")
        return {"ui": {"images": [{"filename": name, "subfolder": "", "type": "output"}]}, "result": ()}


@node("Peek", category="test")
class Peek:
    """Sends one preview (ready JPEG bytes, as a previewer may hand them over)."""
    inputs = (Input("value", INT),)
    outputs = (Output(INT),)

    def run(self, value, ctx):
        ctx.progress(1, 1, preview=PREVIEW_BYTES)
        return (value,)


PREVIEW_BYTES = b"\xff\xd8\xff\xe0ray-preview"


@node("Die", category="test", output_node=True)
class Die:
    """Kills the process it runs in (a worker that crashes on this prompt every time)."""
    inputs = (Input("value", INT),)
    outputs = ()

    def run(self, value):
        os.kill(os.getpid(), signal.SIGKILL)


class ModelPid:
    """A ComfyUI V1 output node taking a MODEL: shows which worker process holds it."""
    NODE_NAME = "ModelPid"
    CATEGORY = "test"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "value": ("INT", {"default": 0})}}

    def run(self, model, value):
        return {"ui": {"pid": [os.getpid()], "value": [value]}}


NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (Seed, Burn, WhoAmI, SaveText, Peek, Die, ModelPid)}


def who(value: int, seconds: float = 0.0, seed: int = 0) -> dict:
    """Seed(seed) -> Burn(seconds) -> WhoAmI; `value` only changes WhoAmI's key."""
    return {"1": {"class_type": "Seed", "inputs": {"value": seed}},
            "2": {"class_type": "Burn", "inputs": {"value": ["1", 0], "seconds": seconds}},
            "3": {"class_type": "WhoAmI", "inputs": {"value": ["2", 0]}},
            "4": {"class_type": "Seed", "inputs": {"value": value}},
            "5": {"class_type": "WhoAmI", "inputs": {"value": ["4", 0]}}}
