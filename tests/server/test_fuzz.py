"""Property-based fuzz of the JSON bodies and query strings: never a 5xx, and the server keeps serving.

The server runs on its own event loop in a thread (hypothesis drives plain functions); requests go
through urllib like the simplest ComfyUI clients.
"""
from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from srv_helpers import make_app

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
CLASS_TYPES = ["Const", "Show", "Fail", "Secret", "Nope", "", 3, None]

scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = scalars | st.recursive(  # half scalars: wrong-typed fields are the interesting case
    scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
links = st.tuples(st.sampled_from(["1", "2", "3", "9", 1]), st.integers(-1, 3)).map(list)
nodes = st.fixed_dictionaries(
    {"class_type": st.sampled_from(CLASS_TYPES)},
    optional={"inputs": st.dictionaries(st.sampled_from(["value", "message", "x"]),
                                        links | json_values, max_size=3) | json_values,
              "_meta": json_values})
prompts = st.dictionaries(st.sampled_from(["1", "2", "3", "x"]), nodes | json_values, max_size=4) | json_values
prompt_bodies = st.fixed_dictionaries({}, optional={
    "prompt": prompts, "client_id": json_values, "prompt_id": st.text(max_size=30) | json_values,
    "number": json_values, "front": json_values, "extra_data": json_values,
    "partial_execution_targets": st.lists(st.sampled_from(["1", "3", "x", 3]), max_size=3) | json_values})
control_bodies = st.fixed_dictionaries({}, optional={
    "clear": json_values, "delete": st.lists(st.text(max_size=10), max_size=3) | json_values,
    "prompt_id": json_values, "unload_models": json_values, "free_memory": json_values}) | json_values


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz") / "base"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(make_app(base))

    async def up() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    port = asyncio.run_coroutine_threadsafe(up(), loop).result(30)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def request(url: str, data: bytes | None = None, method: str | None = None) -> int:
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            res.read()
            return res.status
    except urllib.error.HTTPError as err:
        err.read()
        return err.code


@SETTINGS
@given(body=prompt_bodies)
def test_post_prompt_never_answers_5xx(server_url, body):
    assert request(server_url + "/prompt", json.dumps(body).encode()) < 500


@SETTINGS
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_raw_bytes_never_answer_5xx(server_url, raw):
    for path in ("/prompt", "/queue", "/history", "/interrupt", "/free", "/workflow/convert"):
        assert request(server_url + path, raw) < 500, path


@pytest.mark.parametrize("path", ["/queue", "/history", "/interrupt", "/free", "/workflow/convert",
                                  "/api/jobs/x/cancel"])
@SETTINGS
@given(body=control_bodies)
def test_control_bodies_never_answer_5xx(server_url, body, path):
    assert request(server_url + path, json.dumps(body).encode()) < 500


@SETTINGS
@given(params=st.dictionaries(st.sampled_from(["max_items", "offset", "filename", "subfolder", "type", "preview",
                                               "channel", "status", "limit", "clientId"]),
                              st.text(max_size=12), max_size=4),
       path=st.sampled_from(["/history", "/view", "/api/jobs", "/object_info/x", "/models/x", "/history/x"]))
def test_query_strings_never_answer_5xx(server_url, params, path):
    assert request(f"{server_url}{path}?{urllib.parse.urlencode(params)}") < 500


COMBINING = "\u0300\u0301\u0308\u20dd\u0489"
odd_names = (st.text(alphabet=st.sampled_from(COMBINING), min_size=1, max_size=400)
             | st.text(min_size=1, max_size=300)
             | st.builds(lambda a, n: a * n, st.sampled_from(["a", "\u0301", "\u00e9", "\U0001f600"]),
                         st.integers(100, 1200)))


@SETTINGS
@given(name=odd_names, prefix=st.sampled_from(["/", "/vendor/", "/extensions/x/", "/api/userdata/"]))
def test_unusual_unicode_paths_never_answer_5xx(server_url, name, prefix):
    """Regression: a path segment longer than a file name (e.g. 300 combining marks, 2 bytes each)
    reached os.stat and answered 500 on GET /{path} and GET /vendor/{path}."""
    assert request(server_url + prefix + urllib.parse.quote(name, safe="")) < 500


@pytest.mark.parametrize("name", ["\u0301" * 300, "a" * 300, "\u00e9" * 200])
def test_over_long_names_are_4xx_on_files_routes(server_url, name):
    quoted = urllib.parse.quote(name, safe="")
    for url in (f"/{quoted}", f"/vendor/{quoted}", f"/view?filename={quoted}",
                f"/view?filename=x.png&subfolder={quoted}"):
        assert 400 <= request(server_url + url) < 500, url


def test_server_still_serves_after_the_fuzz(server_url):
    assert request(server_url + "/prompt") == 200
    body = {"prompt": {"1": {"class_type": "Const", "inputs": {"value": 5}},
                       "2": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}}
    assert request(server_url + "/prompt", json.dumps(body).encode()) == 200
