"""GET /ws?clientId=: ComfyUI's event stream.

On connect the client gets `status` with its `sid` and, if it owns the running prompt, the current
`executing` node (a reconnect with the same clientId replaces the old socket). A `feature_flags`
message is answered with the server's flags; every other client message is ignored.
"""
from __future__ import annotations

import json
import uuid

from aiohttp import WSMsgType, web

from .hub import Client
from .routes_info import server_features
from .state import HUB, WORKER, queue_status

MAX_CLIENT_MESSAGE = 1 << 20


async def websocket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_CLIENT_MESSAGE)
    await ws.prepare(request)
    sid = request.query.get("clientId", "")
    if not sid or len(sid) > 200 or not sid.isprintable():
        sid = uuid.uuid4().hex
    hub = app[HUB]
    client = await hub.connect(sid, ws)
    try:
        hub.send("status", {**queue_status(app), "sid": sid}, sid)
        running = app[WORKER].current
        if running is not None and running.client_id == sid and running.node is not None:
            hub.send("executing", {"node": running.node, "display_node": running.node,
                                   "prompt_id": running.prompt_id}, sid)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                _client_message(request, client, msg.data)
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        await hub.disconnect(client)
    return ws


def _client_message(request: web.Request, client: Client, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        return
    if isinstance(message, dict) and message.get("type") == "feature_flags":
        flags = message.get("data")
        client.features = dict(flags) if isinstance(flags, dict) else {}
        features = server_features(request.app)
        request.app[HUB].send("feature_flags", {"supports_preview_metadata": features["supports_preview_metadata"],
                                                "max_upload_size": features["max_upload_size"]},
                              client.sid)
