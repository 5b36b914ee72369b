"""ComfyUI's `PromptServer`, for packs that do `from server import PromptServer`.

ComfyUI packs reach the server through one process-wide handle, `PromptServer.instance`: at import
time (`@PromptServer.instance.routes.get(...)`) and from running nodes (`.send_sync(...)`). Their
code cannot be handed an object, so this class attribute is the one process-wide handle Diffgraph
keeps. Diffgraph's own server never reads it: `create_app()` binds it (`bind`) and mounts its routes.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from engine import current_context
from engine.events import Event
from engine.plugins import PackSideEffects, register_side_effects

log = logging.getLogger(__name__)

SendSync = Callable[[str, Any, "str | None"], None]


@dataclass
class PackEvent(Event):
    """An event a pack sent with `send_sync(event, data, sid)`; `type` is the pack's event name."""

    event_type: str = ""
    payload: Any = None
    sid: str | None = None

    def __post_init__(self) -> None:
        self.type = self.event_type  # shadows Event.type, so sinks route it by the pack's name

    def data(self) -> Any:
        return self.payload


@dataclass
class PromptServer:
    """What ComfyUI packs use: `routes`, `send_sync`, `send`, `client_id`, `add_on_prompt_handler`.

    Before a server binds it (CLI runs, tests) routes are only collected and `send_sync` delivers a
    PackEvent to the running node's event sink; once bound it calls the server's thread-safe send.
    """

    instance: ClassVar[PromptServer]

    routes: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    app: web.Application | None = None
    loop: asyncio.AbstractEventLoop | None = None
    on_prompt_handlers: list[Callable[[dict], dict]] = field(default_factory=list)
    supports: list[str] = field(default_factory=lambda: ["custom_nodes_from_web"])
    _send: SendSync | None = None
    _client_id: str | None = None

    def bind(self, app: web.Application, send_sync: SendSync,
             loop: asyncio.AbstractEventLoop | None = None) -> PromptServer:
        """Called by the server when its app is created: sends now go to its websockets."""
        self.app, self._send, self.loop = app, send_sync, loop
        return self

    def unbind(self) -> None:
        self.app = self._send = self.loop = None

    @property
    def client_id(self) -> str | None:
        """The client that queued the running prompt (ComfyUI packs pass it as `sid`)."""
        ctx = current_context()
        if ctx is not None and ctx.extra_data.get("client_id"):
            return ctx.extra_data["client_id"]
        return self._client_id

    @client_id.setter
    def client_id(self, value: str | None) -> None:
        self._client_id = value

    @property
    def last_node_id(self) -> str | None:
        ctx = current_context()
        return ctx.node_id if ctx is not None else None

    @property
    def last_prompt_id(self) -> str | None:
        ctx = current_context()
        return ctx.run_id if ctx is not None else None

    def send_sync(self, event: str, data: Any, sid: str | None = None) -> None:
        """Send a websocket message `{"type": event, "data": data}` (to `sid`, or to every client)."""
        if self._send is not None:
            self._send(event, data, sid)
            return
        ctx = current_context()
        if ctx is not None:
            ctx.emit(PackEvent(ctx.run_id, event_type=event, payload=data, sid=sid))
        else:
            log.debug("PromptServer.send_sync(%r) outside a run with no server: dropped", event)

    async def send(self, event: str, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    async def send_json(self, event: str, data: Any, sid: str | None = None) -> None:
        self.send_sync(event, data, sid)

    def add_on_prompt_handler(self, handler: Callable[[dict], dict]) -> None:
        self.on_prompt_handlers.append(handler)

    def trigger_on_prompt(self, json_data: dict) -> dict:
        """Let packs rewrite a POST /prompt body, as ComfyUI does; a failing handler is logged and skipped."""
        for handler in self.on_prompt_handlers:
            try:
                json_data = handler(json_data)
            except Exception:
                log.exception("an on_prompt handler from a custom node pack failed")
        return json_data


class _PromptServerSideEffects(PackSideEffects):
    """Lets the pack loader drop the routes and on_prompt handlers of a pack that failed to load."""

    def checkpoint(self) -> Any:
        server = PromptServer.instance
        return server, len(server.routes._items), len(server.on_prompt_handlers)

    def rollback(self, token: Any) -> None:
        server, routes, handlers = token
        del server.routes._items[routes:]
        del server.on_prompt_handlers[handlers:]


PromptServer.instance = PromptServer()
register_side_effects(_PromptServerSideEffects())
