"""A ComfyUI V3 pack (comfy_api.latest, comfy_entrypoint) loads, shows in /object_info as ComfyUI shows
V3 nodes, and runs through the server: POST /prompt, history outputs, a ui output, a lazy input that is
never evaluated, validate_inputs rejecting a prompt, an async execute reading cls.hidden."""
from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine import NodeRegistry, activate_paths, active_paths
from engine.plugins import load_packs
from server.app import create_app
from server.config import ServerConfig

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v3_pack"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("v3_base")
    shutil.copytree(FIXTURE, base / "custom_nodes" / "v3_pack", ignore=shutil.ignore_patterns("__pycache__"))
    return base


def serve(base, check):
    previous = active_paths()
    app = create_app(ServerConfig(base_directory=base, load_builtin_nodes=False))

    async def go():
        async with TestClient(TestServer(app)) as client:
            return await check(client)

    try:
        return asyncio.run(go())
    finally:
        activate_paths(previous)


async def run(client, prompt, timeout=10.0):
    res = await client.post("/prompt", json={"prompt": prompt, "client_id": "v3"})
    if res.status != 200:
        return res.status, await res.json()
    pid = (await res.json())["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = await (await client.get(f"/history/{pid}")).json()
        if body:
            return 200, body[pid]
        await asyncio.sleep(0.02)
    raise AssertionError("prompt did not finish")


def test_v3_pack_is_loaded_through_comfy_entrypoint(base):
    report = load_packs([base / "custom_nodes"], registry := NodeRegistry())
    pack = report.get("v3_pack")
    assert pack.state == "loaded", pack.error
    assert sorted(pack.nodes) == ["V3Add", "V3Boom", "V3Gray", "V3Show", "V3Switch"]
    assert registry.get_class("V3Add").RETURN_TYPES == ("INT",)


def test_v3_nodes_in_object_info_have_comfyuis_v3_shape(base):
    async def check(client):
        return await (await client.get("/object_info")).json()

    info = serve(base, check)
    add = info["V3Add"]
    assert add["input"] == {"required": {"a": ["INT", {"default": 1, "min": 0, "max": 100, "tooltip": "first"}]},
                            "optional": {"b": ["INT", {"default": 2, "min": 0, "max": 100, "step": 1}]}}
    assert add["input_order"] == {"required": ["a"], "optional": ["b"]}
    assert add["output"] == ["INT"] and add["output_name"] == ["sum"] and add["output_is_list"] == [False]
    assert add["output_tooltips"] == ["a + b"]
    assert (add["name"], add["display_name"], add["category"], add["description"]) == \
        ("V3Add", "V3 Add", "v3test", "a + b")
    assert add["output_node"] is False
    show = info["V3Show"]
    assert show["output_node"] is True and show["output"] == []
    # ComfyUI's V3 output nodes get prompt and extra_pnginfo as hidden inputs besides what they ask for
    assert show["input"]["hidden"] == {"unique_id": ["UNIQUE_ID"], "prompt": ["PROMPT"],
                                       "extra_pnginfo": ["EXTRA_PNGINFO"]}
    assert show["input"]["required"]["style"] == ["COMBO", {"default": "plain", "options": ["plain", "loud"]}]
    assert info["V3Switch"]["input"]["required"]["a"] == ["*", {"lazy": True}]
    boom = info["V3Boom"]  # no display_name, no tooltip: null, as ComfyUI shows them
    assert boom["display_name"] is None and boom["output_tooltips"] == [None]
    assert {k: boom[k] for k in ("is_input_list", "deprecated", "experimental", "dev_only", "api_node",
                                 "search_aliases", "output_matchtypes")} == \
        {"is_input_list": False, "deprecated": False, "experimental": False, "dev_only": False,
         "api_node": False, "search_aliases": None, "output_matchtypes": None}
    assert boom["python_module"] == "custom_nodes.v3_pack"


def test_v3_prompt_runs_with_ui_output_lazy_input_and_hidden_unique_id(base):
    prompt = {
        "1": {"class_type": "V3Add", "inputs": {"a": 40, "b": 2}},
        "2": {"class_type": "V3Boom", "inputs": {}},
        "3": {"class_type": "V3Switch", "inputs": {"use_a": True, "a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "V3Show", "inputs": {"value": ["3", 0], "style": "loud"}},
    }

    async def check(client):
        return await run(client, prompt)

    status, entry = serve(base, check)
    assert status == 200
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"]["4"] == {"text": ["42! from 4"]}


def test_v3_validate_inputs_rejects_the_prompt_with_its_message(base):
    prompt = {"1": {"class_type": "V3Add", "inputs": {"a": 1, "b": 13}},
              "2": {"class_type": "V3Show", "inputs": {"value": ["1", 0], "style": "plain"}}}

    async def check(client):
        return await run(client, prompt)

    status, body = serve(base, check)
    assert status == 400
    errors = body["node_errors"]["1"]["errors"]
    assert any(e["type"] == "custom_validation_failed" and "b may not be 13" in e["details"] for e in errors), errors


def test_v3_preview_image_ui_writes_a_temp_png_listed_in_history(base):
    from PIL import Image

    prompt = {"1": {"class_type": "V3Gray", "inputs": {"level": 0.5}}}

    async def check(client):
        return await run(client, prompt)

    status, entry = serve(base, check)
    assert status == 200 and entry["status"]["status_str"] == "success", entry
    ui = entry["outputs"]["1"]
    assert ui["animated"] == [False] and len(ui["images"]) == 1
    item = ui["images"][0]
    assert item["type"] == "temp" and item["filename"].startswith("ComfyUI_temp_")
    with Image.open(base / "temp" / item["subfolder"] / item["filename"]) as png:
        assert png.size == (6, 4) and png.getpixel((0, 0)) == (127, 127, 127)  # ComfyUI truncates 127.5


def test_v3_pack_loads_from_code_that_already_runs_an_event_loop(base):
    async def load():
        return load_packs([base / "custom_nodes"], NodeRegistry())

    report = asyncio.run(load())  # the async comfy_entrypoint is awaited on a helper thread
    assert report.get("v3_pack").state == "loaded", report.get("v3_pack").error
