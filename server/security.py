"""Middlewares: errors never leak a traceback; token auth; Origin, Host and CORS rules.

- Off loopback (or with --auth-token) every request needs the token: `Authorization: Bearer <t>`
  (or `token <t>`), `?token=<t>`, or the HttpOnly cookie set after the first good request.
- State-changing requests and websocket upgrades with a foreign or `null` Origin are refused (CSRF,
  cross-site websocket hijacking); bound to loopback without a token, a non-loopback Host header is
  refused too (DNS rebinding).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .config import ServerConfig, is_loopback
from .replies import json_error
from .state import CONFIG

log = logging.getLogger(__name__)

AUTH_COOKIE = "diffgraph_token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (web.HTTPException, asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return json_error(500, "internal_error", "Internal server error", "the server log has the details")


def guard_middleware(cfg: ServerConfig) -> Any:
    """Host/Origin checks, CORS preflight and the token, in that order."""
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if cfg.cors_origin and request.method == "OPTIONS":
            return web.Response(status=200)  # preflight; headers come from on_response_prepare
        problem = host_problem(request, cfg) or origin_problem(request, cfg)
        if problem:
            log.warning("refused %s %s: %s", request.method, request.path, problem)
            return json_error(403, "forbidden", problem)
        if cfg.auth_required and not token_ok(request, cfg)[0]:
            response = json_error(401, "unauthorized", "A valid token is required",
                                  "send 'Authorization: Bearer <token>' or ?token=<token>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="diffgraph"'
            return response
        return await handler(request)
    return guard


def token_ok(request: web.Request, cfg: ServerConfig) -> tuple[bool, str | None]:
    """(the request carries the right token, where it came from)."""
    token, source = presented_token(request)
    good = token is not None and hmac.compare_digest(token.encode(), (cfg.auth_token or "").encode())
    return good, source


def presented_token(request: web.Request) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip(), "header"
    if request.query.get("token"):
        return request.query["token"], "query"
    if request.cookies.get(AUTH_COOKIE):
        return request.cookies[AUTH_COOKIE], "cookie"
    return None, None


def host_problem(request: web.Request, cfg: ServerConfig) -> str | None:
    """Without a token the only protection of a loopback server is that only local names reach it."""
    if cfg.auth_required or not request.headers.get("Host"):
        return None  # browsers always send Host; only they can be rebound
    host = urlsplit(f"//{request.headers['Host']}").hostname or ""
    if not is_loopback(host):
        return f"Host {host[:80]!r} is not a loopback name; use --listen and a token for remote access"
    return None


def origin_problem(request: web.Request, cfg: ServerConfig) -> str | None:
    websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.method not in STATE_CHANGING and not websocket:
        return None
    origin = request.headers.get("Origin")
    if origin is None:
        return None  # not a browser (urllib, curl, API clients)
    if origin.strip().lower() == "null":
        return "Origin 'null' is refused (sandboxed pages and file:// cannot change state)"
    if cfg.cors_origin == "*" or (cfg.cors_origin and origin == cfg.cors_origin):
        return None
    try:
        parsed = urlsplit(origin)
        o_host, o_port = parsed.hostname, parsed.port
        host = urlsplit(f"//{request.host}")
        h_host, h_port = host.hostname, host.port
    except ValueError:
        return "Origin header is malformed"
    if not o_host or o_host != h_host or (o_port and h_port and o_port != h_port):
        return f"Origin {origin[:80]!r} does not match this server"
    return None


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """CORS headers and the auth cookie, for every response (websockets and prepared ones too)."""
    cfg = request.app[CONFIG]
    if cfg.cors_origin:
        response.headers["Access-Control-Allow-Origin"] = cfg.cors_origin
        response.headers["Access-Control-Allow-Methods"] = "POST, GET, DELETE, PUT, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Allow-Credentials"] = "true"
    if cfg.auth_required and cfg.auth_token:
        good, source = token_ok(request, cfg)
        if good and source != "cookie":
            # aiohttp has folded cookies into the headers by now: add the header itself
            cookie = SimpleCookie()
            cookie[AUTH_COOKIE] = cfg.auth_token
            cookie[AUTH_COOKIE].update({"httponly": True, "samesite": "Strict", "path": "/"})
            response.headers.add("Set-Cookie", cookie[AUTH_COOKIE].OutputString())
