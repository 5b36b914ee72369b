"""GET /api/custom_nodes: every node pack this server found, with its state, and whether to restart.

The body is `engine.plugins.LoadReport.api_payload`: packs (name, path, state loaded/failed/disabled,
nodes, refused clashes, import_seconds, error, traceback, web_directory) plus `restart_required`
and `restart_reasons` when `diffgraph nodes ...` or a hand edit changed custom_nodes since start-up.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from .state import PACKS, PATHS


async def get_custom_nodes(request: web.Request) -> web.Response:
    report = request.app[PACKS]
    if report is None:  # an injected registry (tests): no packs were loaded by this server
        return web.json_response({"packs": [], "restart_required": False, "restart_reasons": []})
    folders = list(request.app[PATHS].custom_nodes)
    return web.json_response(await asyncio.to_thread(report.api_payload, folders))  # it lists folders
