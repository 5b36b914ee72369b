"""Fast fake nodes for the server tests: constants, a cancellable sleep, outputs that show or record.

`Record` appends "<prompt id>" to `<output>/runs.txt` when it finishes, so a test can count how often
each prompt really ran (also across a `kill -9` and restart: this file is copied into a node pack).
"""
from __future__ import annotations

import time

from engine import FLOAT, INT, STRING, Input, NodeRegistry, Output, active_paths, node


@node("Const", category="test")
class Const:
    inputs = (Input("value", INT, default=0, min=-10**9, max=10**9, control_after_generate=True),)
    outputs = (Output(INT, name="value"),)

    def run(self, value):
        return (value,)


@node("Sleep", category="test")
class Sleep:
    """Waits `seconds` in 10 ms steps, reporting progress (a cancel point) at each step."""
    inputs = (Input("value", INT), Input("seconds", FLOAT, default=0.0, min=0.0, max=120.0))
    outputs = (Output(INT),)

    def run(self, value, seconds, ctx):
        steps = max(1, int(seconds / 0.01))
        for i in range(steps):
            time.sleep(seconds / steps)
            ctx.progress(i + 1, steps)
        return (value,)


@node("Spin", category="test")
class Spin:
    """Burns CPU in pure Python (holding the GIL) for `seconds`: the worst case for the event loop."""
    inputs = (Input("value", INT), Input("seconds", FLOAT, default=0.0, min=0.0, max=120.0))
    outputs = (Output(INT),)

    def run(self, value, seconds, ctx):
        end, step = time.perf_counter() + seconds, 0
        while time.perf_counter() < end:
            sum(range(2000))
            step += 1
            if step % 200 == 0:
                ctx.progress(min(step, 10**6), 10**6)
        return (value,)


@node("Show", category="test", output_node=True)
class Show:
    inputs = (Input("value", INT),)
    outputs = ()

    def run(self, value):
        return {"ui": {"text": [str(value)], "value": value}, "result": ()}


@node("Fail", category="test", output_node=True)
class Fail:
    inputs = (Input("value", INT), Input("message", STRING, default="boom"))
    outputs = ()

    def run(self, value, message):
        raise ValueError(message)


@node("Record", category="test", output_node=True)
class Record:
    inputs = (Input("value", INT), Input("tag", STRING, default=""))
    outputs = ()

    def run(self, value, tag, ctx):
        with open(active_paths().output / "runs.txt", "a", encoding="utf-8") as fh:
            fh.write(f"{ctx.run_id}\n")
        return {"ui": {"text": [f"{tag}:{value}"]}, "result": ()}


@node("Secret", category="test", output_node=True)
class Secret:
    """Shows whether the run received the API key that was posted in extra_data."""
    inputs = (Input("value", INT),)
    outputs = ()

    def run(self, value, ctx):
        return {"ui": {"had_key": [ctx.extra_data.get("api_key_comfy_org") is not None]}, "result": ()}


@node("Previewer", category="test", output_node=True)
class Previewer:
    """Sends one preview: ready JPEG bytes, as a previewer may hand them over."""
    inputs = (Input("value", INT),)
    outputs = ()

    def run(self, value, ctx):
        ctx.progress(1, 1, preview=PREVIEW_BYTES)
        return {"ui": {"text": [str(value)]}, "result": ()}


class SecretFail:
    """A ComfyUI-style API node: hidden secret inputs, then a failure that mentions the key."""
    NODE_NAME = "SecretFail"
    CATEGORY = "test"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0})},
                "hidden": {"auth_token_comfy_org": "AUTH_TOKEN_COMFY_ORG", "api_key_comfy_org": "API_KEY_COMFY_ORG"}}

    def run(self, value, auth_token_comfy_org=None, api_key_comfy_org=None):
        raise RuntimeError(f"the service refused key {api_key_comfy_org} (token {auth_token_comfy_org})")


PREVIEW_BYTES = b"\xff\xd8\xff\xe0fake-jpeg"
NODE_CLASS_MAPPINGS = {cls.NODE_NAME: cls for cls in (Const, Sleep, Spin, Show, Fail, Record, Secret, Previewer,
                                                       SecretFail)}


def make_registry() -> NodeRegistry:
    reg = NodeRegistry()
    for name, cls in NODE_CLASS_MAPPINGS.items():
        reg.register(cls, name, pack="fakes")
    return reg


def show(value: int = 1, sleep: float | None = None) -> dict:
    """A prompt: Const -> [Sleep] -> Show."""
    prompt = {"1": {"class_type": "Const", "inputs": {"value": value}}}
    src = ["1", 0]
    if sleep is not None:
        prompt["2"] = {"class_type": "Sleep", "inputs": {"value": src, "seconds": sleep}}
        src = ["2", 0]
    prompt["3"] = {"class_type": "Show", "inputs": {"value": src}}
    return prompt


def record(value: int, sleep: float, tag: str = "") -> dict:
    return {"1": {"class_type": "Const", "inputs": {"value": value}},
            "2": {"class_type": "Sleep", "inputs": {"value": ["1", 0], "seconds": sleep}},
            "3": {"class_type": "Record", "inputs": {"value": ["2", 0], "tag": tag}}}
