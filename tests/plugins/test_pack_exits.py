"""Regression: a pack that calls sys.exit() (or raises another BaseException) at import stopped start-up,
and a pack that failed after registering routes / on_prompt handlers through PromptServer left them behind."""
from __future__ import annotations

import asyncio
import textwrap

from aiohttp.test_utils import TestClient, TestServer

from engine import NodeRegistry, activate_paths, active_paths
from engine.plugins import load_packs
from server.app import create_app
from server.compat import PromptServer
from server.config import ServerConfig
from tests.plugins import packs

EXITS = '''
import sys
from aiohttp import web
from server import PromptServer


@PromptServer.instance.routes.get("/exits_pack/ping")
async def ping(request):
    return web.json_response({"left": "behind"})


PromptServer.instance.add_on_prompt_handler(lambda body: {"hijacked": True})
sys.exit("this pack wants to stop the process")
'''

GENERATOR_EXIT = "raise GeneratorExit('odd but possible')\n"


def _write(base):
    folder = base / "custom_nodes"
    packs.write_pack(folder, "a_exits_pack", {"__init__.py": textwrap.dedent(EXITS)})
    packs.write_pack(folder, "b_generator_exit", {"__init__.py": GENERATOR_EXIT})
    packs.write_pack(folder, "c_good_pack", packs.GOOD)
    return folder


def test_sys_exit_at_import_is_a_failed_pack_and_the_next_packs_load(tmp_path):
    folder = _write(tmp_path)
    routes_before = len(PromptServer.instance.routes._items)
    handlers_before = len(PromptServer.instance.on_prompt_handlers)
    report = load_packs([folder], NodeRegistry())
    states = {p.name: p.state for p in report.packs}
    assert states == {"a_exits_pack": "failed", "b_generator_exit": "failed", "c_good_pack": "loaded"}
    assert "SystemExit" in report.get("a_exits_pack").error
    assert "GeneratorExit" in report.get("b_generator_exit").error
    # nothing of the failed pack is left on the process-wide PromptServer
    assert len(PromptServer.instance.routes._items) == routes_before
    assert len(PromptServer.instance.on_prompt_handlers) == handlers_before


def test_a_failed_packs_routes_and_prompt_handlers_are_not_served(tmp_path):
    _write(tmp_path)
    previous = active_paths()
    app = create_app(ServerConfig(base_directory=tmp_path, load_builtin_nodes=False),
                     prompt_server=PromptServer.instance)

    async def go():
        async with TestClient(TestServer(app)) as client:
            ping = await client.get("/exits_pack/ping")
            listing = await (await client.get("/api/custom_nodes")).json()
            res = await client.post("/prompt", json={"prompt": {"1": {"class_type": "Nope", "inputs": {}}}})
            return ping.status, listing, await res.json()

    try:
        status, listing, body = asyncio.run(go())
    finally:
        activate_paths(previous)
    assert status == 404
    assert "hijacked" not in body and body["error"]["type"] != "no_prompt"  # our handler never ran
    assert "a_exits_pack" in str(listing)
