"""Token auth off loopback, Origin/Host rules (CSRF, websocket hijacking, DNS rebinding), CORS."""
from __future__ import annotations

import pytest
import srv_fakes
from aiohttp.test_utils import TestClient, TestServer
from srv_helpers import make_app

from server.config import ServerConfig
from server.security import AUTH_COOKIE

pytestmark = pytest.mark.anyio
TOKEN = "t0ken-for-tests"


@pytest.fixture
async def remote(base):
    """A server configured as bound to every interface: a token is required."""
    async with TestClient(TestServer(make_app(base, listen="0.0.0.0", auth_token=TOKEN))) as c:
        yield c


async def test_non_loopback_bind_gets_a_random_token_when_none_is_given():
    cfg = ServerConfig(listen="0.0.0.0").with_token()
    assert cfg.auth_required and len(cfg.auth_token) >= 24
    assert ServerConfig(listen="0.0.0.0").with_token().auth_token != cfg.auth_token
    assert not ServerConfig(listen="127.0.0.1,::1").with_token().auth_required
    assert ServerConfig(listen="127.0.0.1", auth_token="x").auth_required


async def test_requests_without_the_token_get_401(remote):
    for method, path in (("GET", "/queue"), ("GET", "/"), ("POST", "/prompt"), ("GET", "/view?filename=x"),
                         ("GET", "/ws"), ("GET", "/api/jobs")):
        res = await remote.request(method, path)
        assert res.status == 401, path
        assert "Bearer" in res.headers["WWW-Authenticate"]
    res = await remote.get("/queue", headers={"Authorization": "Bearer wrong"})
    assert res.status == 401


async def test_header_query_and_cookie_tokens_are_accepted(remote):
    assert (await remote.get("/queue", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200
    assert (await remote.get("/queue", headers={"Authorization": f"token {TOKEN}"})).status == 200
    res = await remote.get(f"/?token={TOKEN}")
    assert res.status == 200 and AUTH_COOKIE in res.cookies
    assert res.cookies[AUTH_COOKIE]["httponly"] and res.cookies[AUTH_COOKIE]["samesite"] == "Strict"
    # the session now carries the cookie: plain requests and the websocket work
    assert (await remote.get("/queue")).status == 200
    ws = await remote.ws_connect("/ws?clientId=c")
    assert (await ws.receive_json())["type"] == "status"
    await ws.close()
    res = await remote.post("/prompt", json={"prompt": srv_fakes.show(1)})
    assert res.status == 200


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example", "garbage"])
async def test_state_changing_requests_from_foreign_origins_are_refused(client, origin):
    res = await client.post("/prompt", json={"prompt": srv_fakes.show(1)}, headers={"Origin": origin})
    assert res.status == 403
    res = await client.post("/queue", json={"clear": True}, headers={"Origin": origin})
    assert res.status == 403
    assert (await client.get("/queue", headers={"Origin": origin})).status == 200  # reads stay open to CORS rules


async def test_cross_site_websocket_is_refused(client):
    res = await client.get("/ws", headers={"Origin": "http://evil.example", "Upgrade": "websocket",
                                           "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                                           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert res.status == 403


async def test_same_origin_and_originless_requests_are_allowed(client):
    host = f"http://{client.host}:{client.port}"
    res = await client.post("/prompt", json={"prompt": srv_fakes.show(1)}, headers={"Origin": host})
    assert res.status == 200
    res = await client.post("/prompt", json={"prompt": srv_fakes.show(2)})  # urllib, curl: no Origin
    assert res.status == 200


async def test_dns_rebinding_host_is_refused_on_an_unauthenticated_loopback_server(client):
    res = await client.get("/queue", headers={"Host": "attacker.example:8188"})
    assert res.status == 403
    assert (await client.get("/queue", headers={"Host": f"localhost:{client.port}"})).status == 200


async def test_cors_header_allows_the_configured_origin(base):
    async with TestClient(TestServer(make_app(base, cors_origin="http://studio.example"))) as c:
        res = await c.options("/prompt", headers={"Origin": "http://studio.example",
                                                  "Access-Control-Request-Method": "POST"})
        assert res.status == 200 and res.headers["Access-Control-Allow-Origin"] == "http://studio.example"
        res = await c.post("/prompt", json={"prompt": srv_fakes.show(1)}, headers={"Origin": "http://studio.example"})
        assert res.status == 200 and "POST" in res.headers["Access-Control-Allow-Methods"]
        res = await c.post("/prompt", json={"prompt": srv_fakes.show(1)}, headers={"Origin": "http://other.example"})
        assert res.status == 403
        res = await c.post("/prompt", json={"prompt": srv_fakes.show(1)}, headers={"Origin": "null"})
        assert res.status == 403


async def test_system_stats_never_shows_the_token(base):
    cfg_argv = ["main.py", "--listen", "0.0.0.0", "--auth-token", TOKEN, f"--auth-token={TOKEN}"]
    async with TestClient(TestServer(make_app(base, listen="0.0.0.0", auth_token=TOKEN, argv=cfg_argv))) as c:
        body = await (await c.get("/system_stats", headers={"Authorization": f"Bearer {TOKEN}"})).text()
        assert TOKEN not in body and "***" in body


async def test_errors_never_leak_a_traceback(client, monkeypatch):
    from server import routes_queue

    def explode(*args, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(routes_queue, "split_secrets", explode)
    res = await client.post("/prompt", json={"prompt": srv_fakes.show(1)})
    text = await res.text()
    assert res.status == 500 and "internal detail" not in text and "Traceback" not in text
    assert (await client.get("/queue")).status == 200
