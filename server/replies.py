"""Small helpers shared by the route modules: JSON error bodies and tolerant JSON body parsing.

Every client error is a 4xx with ComfyUI's error shape (`{"error": {type, message, details,
extra_info}, "node_errors": {}}`), never a traceback.
"""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def error_body(kind: str, message: str, details: str = "") -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "details": details, "extra_info": {}}, "node_errors": {}}


def json_error(status: int, kind: str, message: str, details: str = "") -> web.Response:
    return web.json_response(error_body(kind, message, details), status=status)


def http_error(exc_class: type[web.HTTPException], kind: str, message: str, details: str = "") -> web.HTTPException:
    """An aiohttp HTTP exception carrying a JSON error body (raise it)."""
    return exc_class(text=json.dumps(error_body(kind, message, details)), content_type="application/json")


async def read_json(request: web.Request, empty: Any = ...) -> Any:
    """The body as JSON whatever the Content-Type (ComfyUI clients post with urllib's form type).

    An empty body returns `empty` when given, else is an error; bad JSON is a 400."""
    raw = await request.read()
    if not raw.strip():
        if empty is not ...:
            return empty
        raise http_error(web.HTTPBadRequest, "invalid_json", "Request body is empty", "send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise http_error(web.HTTPBadRequest, "invalid_json", "Request body is not valid JSON", str(exc)[:200]) from None


async def read_json_object(request: web.Request, empty: Any = ...) -> dict[str, Any]:
    body = await read_json(request, empty)
    if not isinstance(body, dict):
        raise http_error(web.HTTPBadRequest, "invalid_json", "Request body must be a JSON object",
                         f"got {type(body).__name__}")
    return body


def query_int(request: web.Request, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise http_error(web.HTTPBadRequest, "invalid_query", f"{name} must be an integer",
                         f"got {raw[:40]!r}") from None
    if value < minimum:
        raise http_error(web.HTTPBadRequest, "invalid_query", f"{name} must be at least {minimum}", f"got {value}")
    return value
