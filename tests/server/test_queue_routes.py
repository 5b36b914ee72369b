"""POST/GET /prompt, /queue, /history, /interrupt, /free and /api/jobs through aiohttp's test client."""
from __future__ import annotations

import asyncio
import json

import pytest
import srv_fakes
from srv_helpers import events_until_done, post_prompt, wait_done, wait_running

from server.state import EXECUTOR, STORE

pytestmark = pytest.mark.anyio


async def test_post_prompt_replies_id_number_and_empty_node_errors(client):
    body = await post_prompt(client, srv_fakes.show(3))
    assert set(body) == {"prompt_id", "number", "node_errors"}
    assert body["node_errors"] == {} and isinstance(body["number"], int)
    entry = await wait_done(client, body["prompt_id"])
    assert entry["outputs"] == {"3": {"text": ["3"], "value": [3]}}
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True


async def test_json_is_parsed_whatever_the_content_type(client):
    # ComfyUI's own examples post with urllib's default form content type.
    res = await client.post("/api/prompt", data=json.dumps({"prompt": srv_fakes.show(1)}),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status == 200
    await wait_done(client, (await res.json())["prompt_id"])


async def test_client_chosen_prompt_id_is_kept_and_a_retry_is_not_queued_twice(client):
    pid = "7c1f0e7e-3b5e-4c59-9a0e-000000000001"
    first = await post_prompt(client, srv_fakes.show(2), prompt_id=pid)
    again = await post_prompt(client, srv_fakes.show(2), prompt_id=pid)
    assert first["prompt_id"] == again["prompt_id"] == pid and first["number"] == again["number"]
    other = await client.post("/prompt", json={"prompt": srv_fakes.show(9), "prompt_id": pid})
    assert other.status == 400 and "already used" in (await other.json())["error"]["message"]
    await wait_done(client, pid)
    jobs = (await (await client.get("/api/jobs")).json())["jobs"]
    assert [j["id"] for j in jobs] == [pid]


@pytest.mark.parametrize("body, kind", [
    ({}, "no_prompt"),
    ({"prompt": []}, "invalid_prompt"),
    ({"prompt": {"1": {"class_type": "Nope", "inputs": {}}}}, "invalid_prompt"),
    ({"prompt": {"1": {"class_type": "Const", "inputs": {"value": 1}}}}, "prompt_no_outputs"),
    ({"prompt": srv_fakes.show(1), "prompt_id": ""}, "invalid_prompt"),
    ({"prompt": srv_fakes.show(1), "prompt_id": ["x"]}, "invalid_prompt"),
    ({"prompt": srv_fakes.show(1), "client_id": 5}, "invalid_prompt"),
    ({"prompt": srv_fakes.show(1), "extra_data": "x"}, "invalid_prompt"),
    ({"prompt": srv_fakes.show(1), "partial_execution_targets": "3"}, "invalid_prompt"),
    ({"prompt": srv_fakes.show(1), "partial_execution_targets": ["99"]}, "invalid_prompt"),
])
async def test_bad_prompt_bodies_get_400_with_comfyui_error_shape(client, body, kind):
    res = await client.post("/prompt", json=body)
    assert res.status == 400
    data = await res.json()
    assert data["error"]["type"] == kind and set(data["error"]) == {"type", "message", "details", "extra_info"}
    assert "node_errors" in data


async def test_validation_errors_list_every_bad_node(client):
    prompt = srv_fakes.show(1)
    prompt["1"]["inputs"]["value"] = 10**12
    prompt["4"] = {"class_type": "Show", "inputs": {}}
    res = await client.post("/prompt", json={"prompt": prompt})
    data = await res.json()
    assert res.status == 400 and data["error"]["type"] == "prompt_outputs_failed_validation"
    assert data["node_errors"]["1"]["errors"][0]["type"] == "value_bigger_than_max"
    assert data["node_errors"]["4"]["errors"][0]["type"] == "required_input_missing"


@pytest.mark.parametrize("raw", [b"{", b"[1,", b"\xff\xfe", b"nul", b"", b"   "])
async def test_malformed_json_is_a_400_not_a_500(client, raw):
    res = await client.post("/prompt", data=raw, headers={"Content-Type": "application/json"})
    assert res.status == 400 and (await res.json())["error"]["type"] == "invalid_json"


async def test_oversized_body_is_refused_with_413(base):
    from srv_helpers import open_client
    c = await open_client(base, max_upload_mb=0.01)
    try:
        res = await c.post("/prompt", data=b"{" + b" " * 20000 + b"}")
        assert res.status == 413
    finally:
        await c.close()


async def test_get_prompt_counts_running_plus_pending(client):
    slow = await post_prompt(client, srv_fakes.show(1, sleep=0.5))
    await post_prompt(client, srv_fakes.show(2))
    await wait_running(client, slow["prompt_id"])
    assert await (await client.get("/prompt")).json() == {"exec_info": {"queue_remaining": 2}}
    await client.post("/interrupt")


async def test_queue_items_are_five_lists_and_pending_order_follows_number_and_front(client):
    running = await post_prompt(client, srv_fakes.show(0, sleep=2))
    await wait_running(client, running["prompt_id"])
    a = await post_prompt(client, srv_fakes.show(1))
    b = await post_prompt(client, srv_fakes.show(2), front=True)
    c = await post_prompt(client, srv_fakes.show(3), number=-1000)
    queue = await (await client.get("/queue")).json()
    assert [i[1] for i in queue["queue_running"]] == [running["prompt_id"]]
    assert [i[1] for i in queue["queue_pending"]] == [c["prompt_id"], b["prompt_id"], a["prompt_id"]]
    assert all(len(item) == 5 for item in queue["queue_running"] + queue["queue_pending"])
    number, pid, prompt, extra, outputs = queue["queue_pending"][-1]
    assert (pid, prompt, outputs) == (a["prompt_id"], srv_fakes.show(1), ["3"])
    await client.post("/queue", json={"clear": True})
    await client.post("/interrupt", json={"prompt_id": running["prompt_id"]})


async def test_post_queue_deletes_pending_only(client):
    running = await post_prompt(client, srv_fakes.show(0, sleep=2))
    await wait_running(client, running["prompt_id"])
    keep = await post_prompt(client, srv_fakes.show(1))
    drop = await post_prompt(client, srv_fakes.show(2))
    res = await client.post("/queue", json={"delete": [drop["prompt_id"], running["prompt_id"], "unknown"]})
    assert res.status == 200
    queue = await (await client.get("/queue")).json()
    assert [i[1] for i in queue["queue_pending"]] == [keep["prompt_id"]]
    assert [i[1] for i in queue["queue_running"]] == [running["prompt_id"]]
    assert (await client.post("/queue", json={"delete": "x"})).status == 400
    await client.post("/queue", json={"clear": True})
    assert (await (await client.get("/queue")).json())["queue_pending"] == []
    await client.post("/interrupt")


async def test_history_is_empty_object_while_unknown_or_running(client):
    assert await (await client.get("/history/nope")).json() == {}
    slow = await post_prompt(client, srv_fakes.show(1, sleep=1))
    await wait_running(client, slow["prompt_id"])
    assert await (await client.get(f"/history/{slow['prompt_id']}")).json() == {}
    await client.post("/interrupt")
    entry = await wait_done(client, slow["prompt_id"])
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])


async def test_history_paging_and_deletion(client):
    ids = [(await post_prompt(client, srv_fakes.show(i)))["prompt_id"] for i in range(4)]
    for pid in ids:
        await wait_done(client, pid)
    assert list(await (await client.get("/history")).json()) == ids
    assert list(await (await client.get("/history?max_items=2")).json()) == ids[2:]  # newest, oldest first
    assert list(await (await client.get("/history?max_items=2&offset=1")).json()) == ids[1:3]
    assert (await client.get("/history?max_items=x")).status == 400
    assert (await client.get("/history?offset=-1")).status == 400
    await client.post("/history", json={"delete": [ids[0]]})
    assert list(await (await client.get("/history")).json()) == ids[1:]
    await client.post("/history", json={"clear": True})
    assert await (await client.get("/history")).json() == {}


async def test_history_entry_shape_matches_comfyui(client):
    pid = (await post_prompt(client, srv_fakes.show(4), client_id="c1", extra_data={"extra_pnginfo": {"w": 1}}))
    entry = await wait_done(client, pid["prompt_id"])
    assert set(entry) == {"prompt", "outputs", "status", "meta"}
    number, prompt_id, prompt, extra, outputs = entry["prompt"]
    assert prompt_id == pid["prompt_id"] and extra == {"extra_pnginfo": {"w": 1}, "client_id": "c1"}
    kinds = [m[0] for m in entry["status"]["messages"]]
    assert kinds == ["execution_start", "execution_cached", "execution_success"]
    assert all("timestamp" in m[1] for m in entry["status"]["messages"])
    assert entry["meta"]["3"]["node_id"] == "3"
    for node_out in entry["outputs"].values():
        assert all(isinstance(v, list) for v in node_out.values())


async def test_failing_node_is_recorded_as_error_with_details(client):
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 1}},
              "2": {"class_type": "Fail", "inputs": {"value": ["1", 0], "message": "kaput"}},
              "3": {"class_type": "Show", "inputs": {"value": ["1", 0]}}}
    pid = (await post_prompt(client, prompt))["prompt_id"]
    entry = await wait_done(client, pid)
    assert entry["status"]["status_str"] == "error"
    err = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert err["node_id"] == "2" and err["exception_type"] == "ValueError" and "kaput" in err["exception_message"]
    assert entry["outputs"]["3"]["text"] == ["1"]  # the independent branch still finished


async def test_partial_execution_targets_run_only_those_outputs(client):
    prompt = srv_fakes.show(5)
    prompt["4"] = {"class_type": "Fail", "inputs": {"value": ["1", 0]}}
    pid = (await post_prompt(client, prompt, partial_execution_targets=["3"]))["prompt_id"]
    entry = await wait_done(client, pid)
    assert entry["status"]["status_str"] == "success" and entry["prompt"][4] == ["3"]


async def test_secrets_in_extra_data_reach_the_run_but_never_queue_history_or_jobs(client):
    prompt = {"1": {"class_type": "Const", "inputs": {"value": 1}},
              "2": {"class_type": "Sleep", "inputs": {"value": ["1", 0], "seconds": 0.3}},
              "3": {"class_type": "Secret", "inputs": {"value": ["2", 0]}}}
    extra = {"api_key_comfy_org": "sk-SECRET1", "auth_token_comfy_org": "SECRET2", "my_password": "SECRET3"}
    pid = (await post_prompt(client, prompt, extra_data=extra))["prompt_id"]
    await wait_running(client, pid)
    seen = [await (await client.get(p)).text() for p in ("/queue", "/api/jobs", f"/api/jobs/{pid}")]
    entry = await wait_done(client, pid)
    seen += [await (await client.get(p)).text() for p in ("/history", f"/history/{pid}", "/api/jobs")]
    assert entry["outputs"]["3"]["had_key"] == [True]
    assert not any("SECRET" in text for text in seen)


async def test_interrupt_with_another_prompt_id_leaves_the_running_one_alone(client):
    slow = await post_prompt(client, srv_fakes.show(1, sleep=0.4))
    await wait_running(client, slow["prompt_id"])
    assert (await client.post("/interrupt", json={"prompt_id": "someone-else"})).status == 200
    assert (await wait_done(client, slow["prompt_id"]))["status"]["status_str"] == "success"
    assert (await client.post("/interrupt", data=b"")).status == 200  # empty body, nothing running
    assert (await client.post("/interrupt", json={"prompt_id": 3})).status == 400


async def test_free_is_applied_by_the_worker(client):
    pid = (await post_prompt(client, srv_fakes.show(8)))["prompt_id"]
    await wait_done(client, pid)
    executor = client.app[EXECUTOR]
    assert len(executor.cache) > 0
    assert (await client.post("/free", json={"unload_models": True, "free_memory": True})).status == 200
    for _ in range(200):
        if len(executor.cache) == 0:
            break
        await asyncio.sleep(0.01)
    assert len(executor.cache) == 0
    assert (await client.post("/free", json={"free_memory": "yes"})).status == 400


async def test_jobs_api_lists_details_and_cancels_pending_and_running(client):
    running = await post_prompt(client, srv_fakes.show(1, sleep=5))
    await wait_running(client, running["prompt_id"])
    pending = await post_prompt(client, srv_fakes.show(2))
    listing = await (await client.get("/api/jobs?status=pending")).json()
    assert [j["id"] for j in listing["jobs"]] == [pending["prompt_id"]] and listing["total"] == 1
    detail = await (await client.get(f"/api/jobs/{running['prompt_id']}")).json()
    assert detail["status"] == "running" and detail["started_at"] and detail["prompt"] == srv_fakes.show(1, sleep=5)
    res = await client.post(f"/api/jobs/{pending['prompt_id']}/cancel")
    assert (await res.json())["was"] == "pending"
    res = await client.post(f"/api/jobs/{running['prompt_id']}/cancel")
    assert (await res.json())["was"] == "running"
    assert (await wait_done(client, running["prompt_id"]))["status"]["completed"] is False
    for pid in (pending["prompt_id"], running["prompt_id"]):
        job = await (await client.get(f"/api/jobs/{pid}")).json()
        assert job["status"] == "interrupted" and job["finished_at"] >= job["created_at"]
    assert (await client.post(f"/api/jobs/{pending['prompt_id']}/cancel")).status == 409
    assert (await client.post("/api/jobs/nope/cancel")).status == 404
    assert (await client.get("/api/jobs/nope")).status == 404
    assert (await client.get("/api/jobs?status=weird")).status == 400
    assert (await client.get("/api/jobs?limit=0")).status == 400


async def test_every_route_is_also_under_api(client):
    for path in ("/prompt", "/queue", "/history", "/object_info", "/system_stats", "/embeddings", "/models",
                 "/extensions", "/features", "/openapi.json"):
        a, b = await client.get(path), await client.get("/api" + path)
        assert a.status == b.status == 200, path


async def test_workflow_shape_is_checked_with_its_json_schema_listing_every_node(client):
    prompt = {"1": {"inputs": {}}, "2": {"class_type": 5, "inputs": {}}, "3": "not a node",
              "4": {"class_type": "Const", "inputs": []}}
    resp = await client.post("/prompt", json={"prompt": prompt})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["type"] == "invalid_prompt"
    assert set(body["node_errors"]) == {"1", "2", "3", "4"}
    details = {nid: e["errors"][0]["details"] for nid, e in body["node_errors"].items()}
    assert "'class_type' is a required property" in details["1"]
    assert details["2"].startswith("2/class_type:") and details["4"].startswith("4/inputs:")
    resp = await client.post("/prompt", json={"prompt": ["not", "an", "object"]})
    assert resp.status == 400 and (await resp.json())["error"]["type"] == "invalid_prompt"


async def test_a_failing_node_never_leaks_its_secret_inputs(client, base):
    """Regression: execution_error carried the hidden auth token / API key in current_inputs (and the
    node's message quoted it) into SQLite, /history, /api/jobs and the websocket."""
    ws = await client.ws_connect("/ws?clientId=sec")
    extra = {"client_id": "sec", "api_key_comfy_org": "sk-LEAKY-KEY-1", "auth_token_comfy_org": "LEAKY-TOKEN-2"}
    pid = (await post_prompt(client, {"1": {"class_type": "SecretFail", "inputs": {"value": 3}}},
                             extra_data=extra))["prompt_id"]
    frames = await events_until_done(ws, pid)
    await ws.close()
    entry = await wait_done(client, pid)
    assert entry["status"]["status_str"] == "error"
    error = next(m for m in frames if m["type"] == "execution_error")["data"]
    assert error["node_id"] == "1" and "refused key" in error["exception_message"]
    assert "value" in error["current_inputs"]  # ordinary inputs are still reported
    seen = [json.dumps(frames)]
    seen += [await (await client.get(p)).text() for p in ("/history", f"/history/{pid}", "/api/jobs",
                                                           f"/api/jobs/{pid}")]
    for path in base.rglob("*"):
        if path.is_file():
            seen.append(path.read_bytes().decode("latin-1"))
    for text in seen:
        assert "LEAKY" not in text


@pytest.mark.parametrize("number", ["x", True, [1], {"a": 1}, "nan", "inf"])
async def test_a_non_numeric_number_is_a_400(client, number):
    """Regression: `"number": "x"` was accepted (and silently replaced)."""
    resp = await client.post("/prompt", json={"prompt": srv_fakes.show(1), "number": number})
    assert resp.status == 400
    body = await resp.json()
    assert "number" in json.dumps(body)
    assert (await (await client.get("/queue")).json())["queue_pending"] == []


async def test_a_numeric_number_orders_the_queue(client):
    pid = (await post_prompt(client, srv_fakes.show(1), number="7.5"))["prompt_id"]
    entry = await wait_done(client, pid)
    assert entry["prompt"][0] == 7.5


async def test_a_job_whose_end_cannot_be_recorded_fails_with_the_reason_and_the_worker_goes_on(client):
    """Regression: store.finish raising left the job "running" forever with no final event."""
    store = client.app[STORE]
    real_finish, calls = store.finish, []

    def flaky_finish(prompt_id, status, *args, **kwargs):
        calls.append(status)
        if len(calls) == 1:
            raise OSError("disk full")
        return real_finish(prompt_id, status, *args, **kwargs)

    store.finish = flaky_finish
    ws = await client.ws_connect("/ws?clientId=rec")
    pid = (await post_prompt(client, srv_fakes.show(4), client_id="rec"))["prompt_id"]
    frames = await events_until_done(ws, pid)
    entry = await wait_done(client, pid)
    assert calls == ["success", "error"]
    assert entry["status"]["status_str"] == "error"
    error = next(m for m in entry["status"]["messages"] if m[0] == "execution_error")[1]
    assert "could not be recorded" in error["exception_message"] and "disk full" in error["exception_message"]
    kinds = [f["type"] for f in frames]
    assert "execution_error" in kinds and "execution_success" not in kinds
    job = await (await client.get(f"/api/jobs/{pid}")).json()
    assert job["status"] == "error"
    # the worker goes on with the next prompt
    nxt = (await post_prompt(client, srv_fakes.show(5)))["prompt_id"]
    assert (await wait_done(client, nxt))["status"]["status_str"] == "success"
    await ws.close()


@pytest.mark.parametrize("method,path,body,store_method", [
    ("post", "/history", {"clear": True}, "delete_history"),
    ("post", "/queue", {"clear": True}, "delete_pending"),
    ("get", "/history", None, "history"),
])
async def test_slow_store_work_does_not_block_the_event_loop(client, method, path, body, store_method):
    """Regression: POST /queue, POST /history (fsync'd writes) and GET /history (parsing all of history)
    ran on the event loop, so every other request and websocket waited for them."""
    import threading

    store = client.app[STORE]
    real, release = getattr(store, store_method), threading.Event()

    def slow(*args, **kwargs):
        release.wait(5)  # the store is busy until the other request has been answered
        return real(*args, **kwargs)

    setattr(store, store_method, slow)
    call = client.post(path, json=body) if method == "post" else client.get(path)
    busy = asyncio.ensure_future(call)
    await asyncio.sleep(0.05)
    other = await asyncio.wait_for(client.get("/prompt"), 2)  # answered while the store is still busy
    assert other.status == 200 and not busy.done()
    release.set()
    assert (await busy).status == 200
