"""The route table's entry type and the OpenAPI 3.1 document generated from it.

Each `Route` carries its summary, query parameters and body description, so `/openapi.json` can
never drift from the routes the server actually mounts.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Route:
    """One HTTP route. Mounted at `path` and at `/api` + `path` unless `api_alias` is False."""

    method: str
    path: str
    handler: Callable[..., Any]
    summary: str
    query: tuple[str, ...] = ()
    body: str | None = None
    api_alias: bool = True
    tag: str = "api"
    empty_reply: bool = False  # answers 200 with an empty body (as ComfyUI does), not JSON
    reply: str = "application/json"  # the 200 body's media type; "*/*" for files

    @property
    def openapi_path(self) -> str:
        return _PARAM.sub(lambda m: "{" + m.group(1) + "}", self.path)


def openapi_document(routes: Iterable[Route], version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {"summary": route.summary, "tags": [route.tag],
                              "operationId": f"{route.method.lower()}_{route.handler.__name__}",
                              "responses": _responses(route)}
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in _PARAM.findall(route.path)]
        params += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in route.query]
        if params:
            op["parameters"] = params
        if route.body:
            kind = "multipart/form-data" if "multipart" in route.body else "application/json"
            op["requestBody"] = {"description": route.body, "required": False,
                                 "content": {kind: {"schema": {"type": "object"}}}}
        if route.api_alias:
            op["description"] = f"Also served at /api{route.path.split('{')[0]}..." if "{" in route.path \
                else f"Also served at /api{route.path}."
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Diffgraph", "version": version,
                 "description": "ComfyUI-compatible API. Errors are JSON: {error: {type, message, details, "
                                "extra_info}, node_errors}. Off loopback, send the token as "
                                "'Authorization: Bearer <token>', ?token= or the cookie set after first use."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "query": {"type": "apiKey", "in": "query", "name": "token"}}},
        "paths": paths,
    }


def _responses(route: Route) -> dict[str, Any]:
    media = "*/*" if route.tag == "web" else route.reply
    ok = {"description": "OK, empty body"} if route.empty_reply else \
        {"description": "OK", "content": {media: {"schema": {}}}}
    out: dict[str, Any] = {"200": ok}
    if route.method != "GET" or route.query or "{" in route.path:
        out["400"] = {"description": "Bad request (JSON error body)"}
    if "{" in route.path or route.query or route.tag == "web":
        out["404"] = {"description": "No such item or file (JSON error body)"}
    if route.method != "GET" and "{" in route.path:
        out["409"] = {"description": "Conflict with the item's state (JSON error body)"}
    if route.body is not None:
        out["413"] = {"description": "Body too large"}
        out["415"] = {"description": "Unsupported media type"}
    out["401"] = {"description": "Token required (non-loopback binds or --auth-token)"}
    if route.method != "GET":
        out["403"] = {"description": "Foreign or null Origin"}
    return out
