"""Packs behind the real server: /extensions, pack routes, send_sync over the websocket, GET /api/custom_nodes."""
from __future__ import annotations

import asyncio
import textwrap

import pytest
from aiohttp.test_utils import TestClient, TestServer

from engine import activate_paths, active_paths
from engine.plugins import mark_restart_required
from server.app import create_app
from server.compat import PromptServer
from server.config import ServerConfig
from tests.plugins import packs

SERVER_PACK = '''
from aiohttp import web
from server import PromptServer


@PromptServer.instance.routes.get("/server_pack/ping")
async def ping(request):
    return web.json_response({"pong": True})


class Hello:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": ("STRING", {"default": "world"})}}
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"
    CATEGORY = "test"

    def run(self, name):
        PromptServer.instance.send_sync("server_pack.hello", {"hello": name}, PromptServer.instance.client_id)
        return {"ui": {"text": [name]}}


NODE_CLASS_MAPPINGS = {"ServerPackHello": Hello}
'''


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    base = tmp_path_factory.mktemp("server_base")
    folder = base / "custom_nodes"
    packs.write_pack(folder, "server_pack", {"__init__.py": textwrap.dedent(SERVER_PACK)})
    packs.write_pack(folder, "web_pack", packs.WEB)
    packs.write_pack(folder, "raises_pack", packs.RAISES)
    packs.write_pack(folder, "off.disabled", packs.GOOD)
    return base


def serve(base, check):
    previous = active_paths()  # create_app activates the server's folders for the whole process
    app = create_app(ServerConfig(base_directory=base, load_builtin_nodes=False), prompt_server=PromptServer.instance)

    async def go():
        async with TestClient(TestServer(app)) as client:
            return await check(client)

    try:
        return asyncio.run(go())
    finally:
        activate_paths(previous)


def test_web_directories_are_listed_and_served_and_nothing_outside_them(base):
    async def check(client):
        listed = await (await client.get("/extensions")).json()
        ext = await client.get("/extensions/web_pack/ext.js")
        escape = await client.get("/extensions/web_pack/..%2F__init__.py")
        return listed, ext.status, await ext.text(), escape.status

    listed, status, text, escape = serve(base, check)
    assert {"/extensions/web_pack/ext.js", "/extensions/web_pack/sub/more.js"} <= set(listed)
    assert not [u for u in listed if "server_pack" in u or "raises_pack" in u]
    assert status == 200 and "web_pack.ext" in text
    assert escape == 404


def test_pack_routes_and_send_sync_reach_clients(base):
    async def check(client):
        pings = [(await client.get(p)).status for p in ("/server_pack/ping", "/api/server_pack/ping")]
        ws = await client.ws_connect("/ws?clientId=me")
        await ws.receive_json()  # status
        prompt = {"1": {"class_type": "ServerPackHello", "inputs": {"name": "pack"}}}
        res = await client.post("/prompt", json={"prompt": prompt, "client_id": "me"})
        assert res.status == 200, await res.text()
        frames = []
        while not frames or frames[-1]["type"] != "execution_success":
            frames.append(await ws.receive_json(timeout=10))
        await ws.close()
        return pings, frames

    pings, frames = serve(base, check)
    assert pings == [200, 200]
    hello = [f for f in frames if f["type"] == "server_pack.hello"]
    assert hello == [{"type": "server_pack.hello", "data": {"hello": "pack"}}]
    assert PromptServer.instance.app is None  # unbound again when the app stopped


def test_api_custom_nodes_lists_every_pack_with_state_and_a_pending_restart(base):
    async def check(client):
        first = await client.get("/api/custom_nodes")
        if first.status == 404:
            return None
        mark_restart_required(base / "custom_nodes", "installed: new_pack")
        return await first.json(), await (await client.get("/api/custom_nodes")).json()

    bodies = serve(base, check)
    if bodies is None:
        pytest.skip("GET /api/custom_nodes is not wired into server/app.py ROUTES yet (server.routes_packs)")
    before, after = bodies
    states = {p["name"]: p["state"] for p in before["packs"]}
    assert states == {"off": "disabled", "raises_pack": "failed", "server_pack": "loaded", "web_pack": "loaded"}
    raises = next(p for p in before["packs"] if p["name"] == "raises_pack")
    assert raises["error"] == "RuntimeError: pack exploded at import" and "Traceback" in raises["traceback"]
    assert next(p for p in before["packs"] if p["name"] == "server_pack")["nodes"] == ["ServerPackHello"]
    assert before["restart_required"] is False
    assert after["restart_required"] is True and after["restart_reasons"] == ["installed: new_pack"]
