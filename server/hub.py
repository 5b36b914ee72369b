"""The websocket hub: connected clients, each with its own bounded send queue and sender task.

A slow or dead socket only ever fills its own queue: lossy frames (progress, previews) are dropped
first, and a client whose queue is full is disconnected (it reconnects and gets `status` again).
`send` runs on the event loop; `send_threadsafe` may be called from any thread (the worker, packs).
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

log = logging.getLogger(__name__)

LOSSY_TYPES = frozenset({"progress", "progress_state"})
QUEUE_SIZE = 1024
SEND_TIMEOUT_S = 10.0
REPLACED_CODE = 4000  # application close code: a newer socket took this clientId


@dataclass
class Client:
    """One websocket and its outbox."""

    sid: str
    ws: web.WebSocketResponse
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    features: dict[str, Any] = field(default_factory=dict)
    task: asyncio.Task | None = None
    dropped: int = 0
    closed: bool = False


class Hub:
    """Clients by sid; frames are JSON text `{"type", "data"}` or binary preview frames."""

    def __init__(self, queue_size: int = QUEUE_SIZE, send_timeout: float = SEND_TIMEOUT_S) -> None:
        self.queue_size = queue_size
        self.send_timeout = send_timeout
        self.clients: dict[str, Client] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    # --- connections (event loop) ---

    async def connect(self, sid: str, ws: web.WebSocketResponse) -> Client:
        """Register a socket; an older socket with the same sid is closed and replaced."""
        old = self.clients.pop(sid, None)
        if old is not None:  # closed in the background: a hung old socket must not delay the new one
            asyncio.ensure_future(self._close(old, REPLACED_CODE, b"replaced by a newer connection"))
        client = Client(sid, ws, asyncio.Queue(self.queue_size))
        client.task = asyncio.ensure_future(self._sender(client))
        self.clients[sid] = client
        return client

    async def disconnect(self, client: Client) -> None:
        if self.clients.get(client.sid) is client:
            del self.clients[client.sid]
        await self._close(client, WSCloseCode.GOING_AWAY, b"")

    async def close_all(self) -> None:
        for client in list(self.clients.values()):
            await self.disconnect(client)

    async def _close(self, client: Client, code: int, message: bytes) -> None:
        client.closed = True
        if client.task is not None and client.task is not asyncio.current_task():
            client.task.cancel()
        if not client.ws.closed:
            try:
                await asyncio.wait_for(client.ws.close(code=code, message=message), self.send_timeout)
            except (TimeoutError, ConnectionError, RuntimeError):
                pass

    async def _sender(self, client: Client) -> None:
        try:
            while True:
                frame = await client.queue.get()
                async with asyncio.timeout(self.send_timeout):  # no task per frame, unlike wait_for
                    if isinstance(frame, bytes):
                        await client.ws.send_bytes(frame)
                    else:
                        await client.ws.send_str(frame)
        except asyncio.CancelledError:
            raise
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            log.info("websocket %s dropped: %s", client.sid, type(exc).__name__)
            if self.clients.get(client.sid) is client:
                del self.clients[client.sid]
            client.closed = True
            if not client.ws.closed:
                asyncio.ensure_future(client.ws.close(code=WSCloseCode.GOING_AWAY))

    # --- sending (event loop) ---

    def send(self, event: str, data: dict[str, Any], sid: str | None = None) -> None:
        """Send `{"type": event, "data": data}` to `sid`, or to everyone when sid is None."""
        frame = json.dumps({"type": event, "data": data}, default=_jsonable)
        self._route(frame, sid, lossy=event in LOSSY_TYPES)

    def send_bytes(self, frame: bytes, sid: str | None = None) -> None:
        self._route(frame, sid, lossy=True)

    def _route(self, frame: str | bytes, sid: str | None, lossy: bool) -> None:
        if sid is None:
            targets = list(self.clients.values())
        else:
            target = self.clients.get(sid)
            targets = [target] if target is not None else []
        for client in targets:
            self._offer(client, frame, lossy)

    def _offer(self, client: Client, frame: str | bytes, lossy: bool) -> None:
        if client.closed:
            return
        if lossy and client.queue.qsize() >= self.queue_size // 2:
            client.dropped += 1  # previews and progress are advisory: shed them before anything else
            return
        try:
            client.queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("websocket %s is not reading (%d frames queued); disconnecting it",
                        client.sid, client.queue.qsize())
            if self.clients.get(client.sid) is client:
                del self.clients[client.sid]
            asyncio.ensure_future(self._close(client, WSCloseCode.TRY_AGAIN_LATER, b"too slow"))

    # --- sending (any thread) ---

    def send_threadsafe(self, event: str, data: dict[str, Any], sid: str | None = None) -> None:
        self._call(self.send, event, data, sid)

    def send_bytes_threadsafe(self, frame: bytes, sid: str | None = None) -> None:
        self._call(self.send_bytes, frame, sid)

    def _call(self, fn: Any, *args: Any) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed between the check and the call (shutdown)
            pass


def _jsonable(value: Any) -> Any:
    """Events may carry tuples, sets or objects from packs: never fail a frame over them."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)
