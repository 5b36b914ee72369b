"""A ComfyUI-style pack using the compatibility names runs unchanged through the engine's Executor."""
from __future__ import annotations

import asyncio
import json
import os
import textwrap

import pytest
import torch
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from safetensors.torch import save_file

from engine import FolderPaths, NodeRegistry, activate_paths, active_paths
from engine.events import ListSink, Progress
from engine.executor import Executor
from engine.plugins import load_packs
from server import PromptServer

# Written exactly as a ComfyUI pack would be: only ComfyUI's module names, no Diffgraph imports.
COMFY_PACK = '''
import os

import comfy.model_management
import comfy.utils
import folder_paths
import nodes
from aiohttp import web
from server import PromptServer


@PromptServer.instance.routes.get("/comfy_style_pack/ping")
async def ping(request):
    return web.json_response({"pong": folder_paths.get_filename_list("checkpoints")})


class ModelInfo:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (folder_paths.get_filename_list("checkpoints"),),
                             "steps": ("INT", {"default": 4, "min": 1, "max": nodes.MAX_RESOLUTION})}}
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    CATEGORY = "comfy_style"

    def run(self, ckpt_name, steps):
        path = folder_paths.get_full_path("checkpoints", ckpt_name)
        tensors = comfy.utils.load_torch_file(path)
        pbar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            comfy.model_management.throw_exception_if_processing_interrupted()
            pbar.update(1)
        PromptServer.instance.send_sync("comfy_style_pack.loaded", {"file": os.path.basename(path),
                                        "tensors": len(tensors)}, PromptServer.instance.client_id)
        return (f"{ckpt_name}: {sorted(tensors)}",)


class SaveText:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True}),
                             "filename_prefix": ("STRING", {"default": "comfy_style/info"})}}
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"
    CATEGORY = "comfy_style"

    def save(self, text, filename_prefix):
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory())
        filename = f"{name}_{counter:05}_.txt"
        with open(os.path.join(folder, filename), "w") as handle:
            handle.write(text)
        return {"ui": {"texts": [{"filename": filename, "subfolder": subfolder, "type": "output"}]}}


class Resize:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": 8, "min": 1, "max": nodes.MAX_RESOLUTION}),
                             "method": (["nearest-exact", "bilinear", "area", "bicubic", "lanczos"],)}}
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    CATEGORY = "comfy_style"

    def run(self, width, method):
        import torch
        image = torch.linspace(0, 1, 4 * 4 * 3).reshape(1, 4, 4, 3)
        samples = image.movedim(-1, 1)
        out = comfy.utils.common_upscale(samples, width, width, method, "disabled")
        return (out.movedim(1, -1).to(comfy.model_management.intermediate_device()),)


class Spin:
    """Reports progress forever; only a cancel stops it."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"steps": ("INT", {"default": 1000, "min": 1, "max": 100000})}}
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "comfy_style"

    def run(self, steps):
        pbar = comfy.utils.ProgressBar(steps)
        for i in range(steps):
            pbar.update_absolute(i + 1)
        return (steps,)


NODE_CLASS_MAPPINGS = {"ComfyStyleModelInfo": ModelInfo, "ComfyStyleSaveText": SaveText,
                       "ComfyStyleResize": Resize, "ComfyStyleSpin": Spin}
NODE_DISPLAY_NAME_MAPPINGS = {"ComfyStyleModelInfo": "Model info (ComfyUI style)"}
'''


@pytest.fixture(scope="module")
def installation(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_install")
    (base / "models" / "checkpoints").mkdir(parents=True)
    save_file({"a.weight": torch.ones(2, 3), "b.bias": torch.zeros(3)},
              str(base / "models" / "checkpoints" / "tiny.safetensors"))
    pack = base / "custom_nodes" / "comfy_style_pack"
    pack.mkdir(parents=True)
    (pack / "__init__.py").write_text(textwrap.dedent(COMFY_PACK))
    previous = active_paths()
    activate_paths(FolderPaths(base))
    registry = NodeRegistry()
    report = load_packs([base / "custom_nodes"], registry)
    yield base, registry, report
    activate_paths(previous)


def test_the_pack_loads_with_input_types_read_from_folder_paths(installation):
    _, registry, report = installation
    assert report.get("comfy_style_pack").state == "loaded", report.get("comfy_style_pack").traceback
    info = registry.object_info()["ComfyStyleModelInfo"]
    assert info["input"]["required"]["ckpt_name"][0] == ["tiny.safetensors"]
    assert info["display_name"] == "Model info (ComfyUI style)"


def test_a_workflow_of_the_pack_runs_with_progress_events_and_output_files(installation):
    base, registry, _ = installation
    prompt = {"1": {"class_type": "ComfyStyleModelInfo", "inputs": {"ckpt_name": "tiny.safetensors", "steps": 3}},
              "2": {"class_type": "ComfyStyleSaveText",
                    "inputs": {"text": ["1", 0], "filename_prefix": "comfy_style/info"}}}
    sink = ListSink()
    result = Executor(registry).run(prompt, run_id="p1", sink=sink, extra_data={"client_id": "client-7"})
    assert result.status == "success", result.failures
    assert result.outputs["2"] == {"texts": [{"filename": "info_00001_.txt", "subfolder": "comfy_style",
                                              "type": "output"}]}
    written = base / "output" / "comfy_style" / "info_00001_.txt"
    assert written.read_text() == "tiny.safetensors: ['a.weight', 'b.bias']"
    progress = [(e.node, e.value, e.max) for e in sink.events if isinstance(e, Progress)]
    assert progress == [("1", 1, 3), ("1", 2, 3), ("1", 3, 3)]
    sent = [e for e in sink.events if e.type == "comfy_style_pack.loaded"]
    assert len(sent) == 1 and sent[0].data() == {"file": "tiny.safetensors", "tensors": 2}
    assert sent[0].sid == "client-7" and sent[0].prompt_id == "p1"
    # a second run counts on from the existing file, as ComfyUI's get_save_image_path does
    Executor(registry).run(prompt, run_id="p2")
    assert (base / "output" / "comfy_style" / "info_00002_.txt").is_file()


def test_send_sync_goes_to_the_bound_server_when_there_is_one(installation):
    _, registry, _ = installation
    sent = []
    server = PromptServer.instance
    server.bind(web.Application(), lambda event, data, sid: sent.append((event, data, sid)))
    try:
        prompt = {"1": {"class_type": "ComfyStyleModelInfo", "inputs": {"ckpt_name": "tiny.safetensors",
                                                                        "steps": 1}},
                  "2": {"class_type": "ComfyStyleSaveText",  # its own prefix: tests run in any order
                        "inputs": {"text": ["1", 0], "filename_prefix": "comfy_style/sync"}}}
        result = Executor(registry).run(prompt, run_id="p3", extra_data={"client_id": "client-9"})
    finally:
        server.unbind()
    assert result.status == "success", result.validation.response() if result.validation else result.failures
    assert sent == [("comfy_style_pack.loaded", {"file": "tiny.safetensors", "tensors": 2}, "client-9")]


def test_common_upscale_inside_a_pack_matches_torch_interpolate(installation):
    _, registry, _ = installation
    ex = Executor(registry)
    image = torch.linspace(0, 1, 4 * 4 * 3).reshape(1, 4, 4, 3)
    for method, mode in (("bilinear", "bilinear"), ("nearest-exact", "nearest-exact"), ("area", "area")):
        prompt = {"1": {"class_type": "ComfyStyleResize", "inputs": {"width": 8, "method": method}},
                  "2": {"class_type": "ComfyStyleSpin", "inputs": {"steps": 1}}}
        result = ex.run(prompt, targets=["1"], run_id=f"r-{method}")
        assert result.status == "success", result.failures
        got = result.values["1"][0][0]
        want = torch.nn.functional.interpolate(image.movedim(-1, 1), size=(8, 8), mode=mode).movedim(1, -1)
        assert got.shape == (1, 8, 8, 3) and torch.equal(got, want)


def test_a_cancel_stops_a_pack_node_at_its_next_progress_update(installation):
    _, registry, _ = installation
    ex = Executor(registry)

    class CancelAfterThree(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, Progress) and event.value == 3:
                ex.cancel("spin")

    sink = CancelAfterThree()
    result = ex.run({"1": {"class_type": "ComfyStyleSpin", "inputs": {"steps": 100000}}}, run_id="spin", sink=sink)
    assert result.status == "interrupted", result.validation.response() if result.validation else result
    assert [e.value for e in sink.events if isinstance(e, Progress)] == [1, 2, 3]
    assert "execution_interrupted" in sink.types()


def test_routes_a_pack_registers_are_served_from_the_shared_route_table(installation):
    app = web.Application()
    app.add_routes(PromptServer.instance.routes)

    async def fetch():
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/comfy_style_pack/ping")
            return response.status, await response.json()

    assert asyncio.run(fetch()) == (200, {"pong": ["tiny.safetensors"]})


def test_the_pack_ran_under_a_private_module_name_and_left_the_real_modules_alone(installation):
    import sys

    import folder_paths
    assert "diffgraph_packs.comfy_style_pack" in sys.modules
    assert folder_paths.get_output_directory() == os.path.join(str(installation[0].resolve()), "output")
    assert json.dumps(installation[2].to_dict())  # the report is JSON for GET /api/custom_nodes
