"""Server test helpers (importable by name, unlike conftest): apps over a temporary base directory
with the fast fake nodes, clients, and waiting for prompts to run or finish."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import srv_fakes
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.config import ServerConfig


def make_config(base: Path, **overrides: Any) -> ServerConfig:
    return ServerConfig(base_directory=base, load_builtin_nodes=False, **overrides)


def make_app(base: Path, registry=None, **overrides: Any):
    return create_app(make_config(base, **overrides), registry or srv_fakes.make_registry())


async def open_client(base: Path, **overrides: Any) -> TestClient:
    c = TestClient(TestServer(make_app(base, **overrides)))
    await c.start_server()
    return c


async def post_prompt(client: TestClient, prompt: dict, **body: Any) -> dict:
    res = await client.post("/prompt", json={"prompt": prompt, **body})
    assert res.status == 200, await res.text()
    return await res.json()


async def wait_done(client: TestClient, prompt_id: str, timeout: float = 10.0) -> dict:
    """Poll /history/{id} the way catapult-style clients do; returns the entry."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        res = await client.get(f"/history/{prompt_id}")
        body = await res.json()
        if body:
            return body[prompt_id]
        await asyncio.sleep(0.01)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout} s")


async def wait_running(client: TestClient, prompt_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = await (await client.get("/queue")).json()
        if any(item[1] == prompt_id for item in queue["queue_running"]):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"prompt {prompt_id} did not start in {timeout} s")


async def events_until_done(ws, prompt_id: str, timeout: float = 10.0) -> list[dict]:
    """Text frames up to and including executing{node: null} for `prompt_id`."""
    seen = []
    while True:
        msg = await ws.receive_json(timeout=timeout)
        seen.append(msg)
        if msg["type"] == "executing" and msg["data"]["node"] is None and msg["data"]["prompt_id"] == prompt_id:
            return seen
