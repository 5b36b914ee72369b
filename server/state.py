"""Typed application state: one `web.AppKey` per shared object of a server (no module globals).

Handlers read `request.app[STORE]` and friends; `create_app()` fills every key.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from engine import FolderPaths, NodeRegistry

from .config import ServerConfig
from .hub import Hub
from .store import JobStore
from .worker import Worker

CONFIG = web.AppKey("config", ServerConfig)
PATHS = web.AppKey("paths", FolderPaths)
REGISTRY = web.AppKey("registry", NodeRegistry)
STORE = web.AppKey("store", JobStore)
HUB = web.AppKey("hub", Hub)
WORKER = web.AppKey("worker", Worker)
EXECUTOR = web.AppKey("executor", object)
PACKS = web.AppKey("packs", object)            # engine.plugins.LoadReport, or None with an injected registry
PROMPT_SERVER = web.AppKey("prompt_server", object)  # server.compat.PromptServer bound to this app, or None
SECRETS = web.AppKey("secrets", dict)          # prompt id -> secret extra_data keys, in memory only
ROUTE_TABLE = web.AppKey("route_table", tuple)


def queue_status(app: web.Application) -> dict[str, Any]:
    """The `status` message payload: ComfyUI counts running plus pending."""
    return {"status": {"exec_info": {"queue_remaining": app[STORE].remaining()}}}
