"""Example workflows for the editor's Examples menu: GET /api/workflows and /api/workflows/{name}.

They are the JSON files of the repository's `workflows/` folder (API or UI format); names are
plain file names, joined with safe_join so no request can read outside that folder.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from engine import UnsafePathError, safe_join

from .replies import json_error
from .state import CONFIG


def list_workflows(folder: Path | None) -> list[str]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("*.json") if p.is_file())


async def get_workflows(request: web.Request) -> web.Response:
    folder = request.app[CONFIG].workflows_dir
    return web.json_response(await asyncio.to_thread(list_workflows, folder))


async def get_workflow(request: web.Request) -> web.Response:
    folder = request.app[CONFIG].workflows_dir
    name = request.match_info["name"]
    if folder is None or not name.endswith(".json"):
        return json_error(404, "not_found", "No such example workflow", f"{name!r} is not a .json example")
    try:
        path = safe_join(folder, "", name)
    except UnsafePathError as exc:
        return json_error(400, "bad_path", "Invalid workflow name", str(exc))
    try:
        data = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    except FileNotFoundError:
        return json_error(404, "not_found", "No such example workflow", f"{name!r} is not in workflows/")
    except (OSError, ValueError) as exc:
        return json_error(422, "unreadable", "Example cannot be read", f"{name}: {exc}")
    return web.json_response(data)
