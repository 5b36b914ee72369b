"""/ws: one prompt followed from POST to executing{node: null}, the ordering traps, reconnects,
feature flags, previews, and a hub whose slow clients never hold up the others."""
from __future__ import annotations

import asyncio
import json
import struct
import time

import pytest
import srv_fakes
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from srv_helpers import events_until_done, make_app, post_prompt, wait_done, wait_running

from server.hub import Hub

pytestmark = pytest.mark.anyio


async def drain(ws, quiet: float = 0.15) -> list[dict]:
    """Every frame until the socket has been quiet for `quiet` seconds."""
    frames = []
    while True:
        try:
            frames.append(await ws.receive_json(timeout=quiet))
        except TimeoutError:
            return frames


async def test_one_prompt_from_post_to_executing_null_in_order(client):
    ws = await client.ws_connect("/ws?clientId=me")
    hello = await ws.receive_json()
    assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "me"}}
    pid = (await post_prompt(client, srv_fakes.show(7, sleep=0.03), client_id="me"))["prompt_id"]
    frames = await events_until_done(ws, pid)
    assert all(isinstance(f["type"], str) and isinstance(f["data"], dict) for f in frames)
    mine = [f for f in frames if f["data"].get("prompt_id") == pid]
    kinds = [f["type"] for f in mine]
    assert kinds[:2] == ["execution_start", "execution_cached"]
    assert [f["data"]["node"] for f in mine if f["type"] == "executing"] == ["1", "2", "3", None]
    assert "progress" in kinds and kinds.index("progress") > kinds.index("execution_cached")
    executed = next(f["data"] for f in mine if f["type"] == "executed")
    assert executed["node"] == "3" and executed["output"]["text"] == ["7"]
    # done ordering: execution_success, then status, then executing{node: null}
    tail = [f["type"] for f in frames[-3:]]
    assert tail == ["execution_success", "status", "executing"]
    assert frames[-2]["data"]["status"]["exec_info"]["queue_remaining"] == 0
    await ws.close()


async def test_history_is_written_before_execution_success_is_sent(client):
    # comfy-toolkit exists because ComfyUI sends execution_success before writing history.
    ws = await client.ws_connect("/ws?clientId=h")
    await ws.receive_json()
    for value in range(5):
        pid = (await post_prompt(client, srv_fakes.show(value), client_id="h"))["prompt_id"]
        while True:
            msg = await ws.receive_json(timeout=10)
            done = msg["type"] == "executing" and msg["data"]["node"] is None
            if msg["type"] == "execution_success" or done:
                entry = await (await client.get(f"/history/{pid}")).json()
                assert entry[pid]["status"]["status_str"] == "success", msg
            if done:
                break
    await ws.close()


async def test_no_event_for_a_prompt_reaches_the_client_before_its_post_reply(base, monkeypatch):
    # ComfyScript crashes when `executing` arrives before it has read the POST reply. Make the reply
    # slow to leave the server: a worker that started early would be caught by the margin.
    original = web.Response.write_eof

    async def slow_write_eof(self, data=b""):
        await asyncio.sleep(0.3)
        return await original(self, data)

    monkeypatch.setattr(web.Response, "write_eof", slow_write_eof)
    async with TestClient(TestServer(make_app(base))) as client:
        ws = await client.ws_connect("/ws?clientId=fast")
        await ws.receive_json()
        arrivals: list[tuple[float, dict]] = []

        async def read():
            while True:
                msg = await ws.receive_json(timeout=10)
                arrivals.append((time.monotonic(), msg))
                if msg["type"] == "executing" and msg["data"]["node"] is None:
                    return

        reader = asyncio.ensure_future(read())
        res = await client.post("/prompt", json={"prompt": srv_fakes.show(1), "client_id": "fast"})
        replied = time.monotonic()
        pid = (await res.json())["prompt_id"]
        await asyncio.wait_for(reader, 10)
        per_prompt = [t for t, m in arrivals if m["data"].get("prompt_id") == pid]
        assert per_prompt and min(per_prompt) >= replied - 0.05
        await ws.close()


async def test_prompts_without_client_id_send_no_per_prompt_events(client):
    ws = await client.ws_connect("/ws?clientId=watcher")
    await ws.receive_json()
    pid = (await post_prompt(client, srv_fakes.show(1)))["prompt_id"]
    await wait_done(client, pid)
    frames = await drain(ws)
    assert frames and {f["type"] for f in frames} == {"status"}
    await ws.close()


async def test_events_go_only_to_the_submitting_client(client):
    a = await client.ws_connect("/ws?clientId=a")
    b = await client.ws_connect("/ws?clientId=b")
    await a.receive_json(), await b.receive_json()
    pid = (await post_prompt(client, srv_fakes.show(1), client_id="a"))["prompt_id"]
    await events_until_done(a, pid)
    assert {m["type"] for m in await drain(b)} == {"status"}
    await a.close(), await b.close()


async def test_interrupt_without_client_is_broadcast(client):
    ws = await client.ws_connect("/ws?clientId=someone")
    await ws.receive_json()
    pid = (await post_prompt(client, srv_fakes.show(1, sleep=3)))["prompt_id"]
    await wait_running(client, pid)
    await client.post("/interrupt")
    while True:
        msg = await ws.receive_json(timeout=10)
        if msg["type"] == "execution_interrupted":
            assert msg["data"]["prompt_id"] == pid and msg["data"]["node_id"] == "2"
            break
    await ws.close()


async def test_reconnect_with_same_client_id_replaces_the_socket_and_gets_the_current_node(client):
    old = await client.ws_connect("/ws?clientId=re")
    await old.receive_json()
    pid = (await post_prompt(client, srv_fakes.show(1, sleep=3), client_id="re"))["prompt_id"]
    await wait_running(client, pid)
    await asyncio.sleep(0.1)
    new = await client.ws_connect("/ws?clientId=re")
    assert (await new.receive_json())["data"]["sid"] == "re"
    current = await new.receive_json()
    assert current["type"] == "executing" and current["data"] == {"node": "2", "display_node": "2", "prompt_id": pid}
    msg = await old.receive(timeout=5)
    while msg.type == WSMsgType.TEXT:  # frames sent before the replacement, then the server closes it
        msg = await old.receive(timeout=5)
    assert msg.type == WSMsgType.CLOSE and msg.data == 4000
    await client.post("/interrupt")
    await new.close()


async def test_feature_flags_are_answered(client):
    ws = await client.ws_connect("/ws")
    hello = await ws.receive_json()
    assert len(hello["data"]["sid"]) == 32  # a fresh uuid hex without clientId
    await ws.send_json({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    reply = await ws.receive_json(timeout=5)
    assert reply["type"] == "feature_flags" and reply["data"]["supports_preview_metadata"] is True
    assert reply["data"]["max_upload_size"] == 100 * 1024 * 1024
    await ws.send_str("not json")  # ignored, socket stays up
    await ws.send_json({"type": "feature_flags", "data": []})
    assert (await ws.receive_json(timeout=5))["type"] == "feature_flags"
    await ws.close()


def previewer_prompt(value: int):
    return {"1": {"class_type": "Const", "inputs": {"value": value}},
            "2": {"class_type": "Previewer", "inputs": {"value": ["1", 0]}}}


async def binary_frames(client, client_id: str, value: int, flags: dict | None = None) -> list[bytes]:
    ws = await client.ws_connect(f"/ws?clientId={client_id}")
    await ws.receive_json()
    if flags is not None:
        await ws.send_json({"type": "feature_flags", "data": flags})
        await ws.receive_json()
    pid = (await post_prompt(client, previewer_prompt(value), client_id=client_id))["prompt_id"]
    frames = []
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type == WSMsgType.BINARY:
            frames.append(msg.data)
        elif msg.json()["type"] == "executing" and msg.json()["data"]["node"] is None \
                and msg.json()["data"]["prompt_id"] == pid:
            break
    await ws.close()
    return frames


async def test_previews_are_off_by_default(client):
    # comfy-api-simplified returns any binary frame as the result image.
    assert await binary_frames(client, "nopreview", 1) == []


async def test_previews_when_enabled_use_comfyui_binary_layouts(base):
    async with TestClient(TestServer(make_app(base, preview_method="auto"))) as client:
        [frame] = await binary_frames(client, "p1", 1)
        assert struct.unpack(">II", frame[:8]) == (1, 1) and frame[8:] == srv_fakes.PREVIEW_BYTES
        [frame] = await binary_frames(client, "p2", 2, {"supports_preview_metadata": True})
        kind, size = struct.unpack(">II", frame[:8])
        meta = json.loads(frame[8:8 + size])
        assert kind == 4 and meta["node_id"] == "2" and meta["image_type"] == "image/jpeg"
        assert frame[8 + size:] == srv_fakes.PREVIEW_BYTES


# --- the hub: bounded queues, slow and dead sockets ---

class FakeSocket:
    def __init__(self, stuck: bool = False, broken: bool = False):
        self.stuck, self.broken = stuck, broken
        self.sent: list = []
        self.closed = False
        self.close_code = None

    async def send_str(self, text):
        if self.broken:
            raise ConnectionResetError("gone")
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append(text)

    send_bytes = send_str

    async def close(self, code=1000, message=b""):
        self.closed, self.close_code = True, code


async def test_a_stuck_socket_never_delays_the_others_and_is_dropped_when_full():
    hub = Hub(queue_size=64, send_timeout=5)
    hub.attach(asyncio.get_running_loop())
    stuck, fast = FakeSocket(stuck=True), FakeSocket()
    await hub.connect("stuck", stuck)
    await hub.connect("fast", fast)
    started = time.monotonic()
    for i in range(200):
        hub.send("progress", {"value": i})
        hub.send("executing", {"node": str(i)})
        await asyncio.sleep(0.0005)
    while len(fast.sent) < 400 and time.monotonic() - started < 5:
        await asyncio.sleep(0.001)
    assert len(fast.sent) == 400 and time.monotonic() - started < 2
    await asyncio.sleep(0.01)
    assert "stuck" not in hub.clients and stuck.closed  # its queue filled: disconnected, it will reconnect
    assert "fast" in hub.clients


async def test_progress_is_shed_before_anything_else_and_dead_sockets_are_removed():
    hub = Hub(queue_size=8, send_timeout=5)
    hub.attach(asyncio.get_running_loop())
    slow = FakeSocket(stuck=True)
    client = await hub.connect("slow", slow)
    for i in range(20):
        hub.send("progress", {"value": i})
    assert client.queue.qsize() <= 4 + 1 and client.dropped >= 15 and "slow" in hub.clients
    dead = FakeSocket(broken=True)
    await hub.connect("dead", dead)
    hub.send("status", {})
    await asyncio.sleep(0.01)
    assert "dead" not in hub.clients
    await hub.close_all()


async def test_send_timeout_drops_a_socket_that_stops_reading():
    hub = Hub(queue_size=8, send_timeout=0.05)
    hub.attach(asyncio.get_running_loop())
    await hub.connect("stuck", FakeSocket(stuck=True))
    hub.send("status", {})
    await asyncio.sleep(0.2)
    assert "stuck" not in hub.clients


async def test_threadsafe_sends_from_worker_threads_keep_their_order():
    hub = Hub()
    hub.attach(asyncio.get_running_loop())
    sock = FakeSocket()
    await hub.connect("c", sock)

    def worker():
        for i in range(300):
            hub.send_threadsafe("executing", {"node": str(i)}, "c")

    await asyncio.to_thread(worker)
    for _ in range(200):
        if len(sock.sent) == 300:
            break
        await asyncio.sleep(0.005)
    assert [json.loads(s)["data"]["node"] for s in sock.sent] == [str(i) for i in range(300)]
    await hub.close_all()
