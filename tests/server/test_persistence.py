"""The queue survives: the SQLite job store, recovery after a crash, and a real `kill -9` of main.py."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import srv_fakes
from aiohttp.test_utils import TestClient, TestServer
from srv_helpers import make_app, post_prompt, wait_done, wait_running

from server.store import MAX_ATTEMPTS, JobStore

REPO = Path(__file__).resolve().parents[2]


def add(store: JobStore, pid: str, number: float | None = None) -> None:
    store.add(pid, store.next_number() if number is None else number, srv_fakes.show(1), {"client_id": "c"}, ["3"])


# --- the store ---

def test_committed_jobs_survive_a_reopen_in_queue_order(tmp_path):
    store = JobStore(tmp_path / "q.sqlite3")
    for pid in ("a", "b", "c"):
        add(store, pid)
    add(store, "first", number=-5)
    store._db.close()  # no clean shutdown
    again = JobStore(tmp_path / "q.sqlite3")
    assert [j.prompt_id for j in again.pending()] == ["first", "a", "b", "c"]
    assert again.pending()[1].queue_item() == [1, "a", srv_fakes.show(1), {"client_id": "c"}, ["3"]]
    assert again.next_number() == 6  # numbers keep growing across restarts


def test_the_running_job_goes_back_to_its_place_and_counts_its_starts(tmp_path):
    store = JobStore(tmp_path / "q.sqlite3")
    for pid in ("a", "b"):
        add(store, pid)
    assert store.claim_next(set()).prompt_id == "a"
    assert store.recover() == (["a"], [])
    job = store.claim_next(set())
    assert (job.prompt_id, job.attempts) == ("a", 2)


def test_a_prompt_that_keeps_killing_the_server_is_failed_not_retried_forever(tmp_path):
    store = JobStore(tmp_path / "q.sqlite3")
    add(store, "poison")
    for _ in range(MAX_ATTEMPTS):
        assert store.claim_next(set()).prompt_id == "poison"
        requeued, failed = store.recover()
    assert failed == ["poison"] and store.pending() == []
    entry = store.get("poison").history_entry()
    assert entry["status"]["status_str"] == "error" and "not retried" in json.dumps(entry)


def test_claim_skips_held_jobs_and_history_is_capped_oldest_out(tmp_path):
    store = JobStore(tmp_path / "q.sqlite3", history_size=3)
    for pid in "abcde":
        add(store, pid)
    assert store.claim_next({"a"}).prompt_id == "b"
    for pid in "bacde":
        if pid != "b":
            store.claim_next(set())
        store.finish(pid, "success", {}, [], {})
    assert [j.prompt_id for j in store.history()] == ["c", "d", "e"]
    assert store.get("b") is None


def test_duplicate_prompt_ids_are_refused(tmp_path):
    from server.store import DuplicatePromptId
    store = JobStore(tmp_path / "q.sqlite3")
    add(store, "x")
    with pytest.raises(DuplicatePromptId):
        add(store, "x")


@pytest.mark.anyio
async def test_a_graceful_stop_requeues_the_running_prompt_and_a_restart_runs_the_queue(base):
    async with TestClient(TestServer(make_app(base))) as client:
        slow = (await post_prompt(client, srv_fakes.show(1, sleep=5)))["prompt_id"]
        rest = [(await post_prompt(client, srv_fakes.show(v)))["prompt_id"] for v in (2, 3)]
        await wait_running(client, slow)
    # leaving the block stopped the server: the run was cancelled and put back, not failed
    async with TestClient(TestServer(make_app(base))) as client:
        job = await (await client.get(f"/api/jobs/{slow}")).json()
        assert job["status"] in ("pending", "running") and job["attempts"] <= 1
        assert (await client.post(f"/api/jobs/{slow}/cancel")).status == 200
        for pid in rest:
            assert (await wait_done(client, pid))["status"]["status_str"] == "success"


# --- a real crash ---

PACK_INIT = "from .srv_fakes import NODE_CLASS_MAPPINGS\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as res:
        return json.loads(res.read() or b"{}")


def start(base: Path, port: int, log) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "--port", str(port), "--base-directory",
                             str(base), "--no-builtin-nodes"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, (base / "server.log").read_text()
        try:
            http(f"http://127.0.0.1:{port}/api/prompt")
            return proc
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


def wait_for(predicate, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


def test_kill_9_mid_run_then_restart_runs_every_prompt_exactly_once(tmp_path):
    base = tmp_path / "base"
    pack = base / "custom_nodes" / "fakepack"
    pack.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("srv_fakes.py"), pack / "srv_fakes.py")
    (pack / "__init__.py").write_text(PACK_INIT)
    port, log = free_port(), open(base / "server.log", "a")
    url = f"http://127.0.0.1:{port}"
    proc = start(base, port, log)
    try:
        quick = http(url + "/prompt", {"prompt": srv_fakes.record(0, 0.0, "quick")})["prompt_id"]
        wait_for(lambda: http(f"{url}/history/{quick}"))
        ids = [http(url + "/prompt", {"prompt": srv_fakes.record(i, 1.5 if i == 1 else 0.2, f"p{i}")})["prompt_id"]
               for i in (1, 2, 3)]
        wait_for(lambda: http(url + "/queue")["queue_running"])
        time.sleep(0.4)
        assert http(url + "/queue")["queue_running"][0][1] == ids[0]
        os.kill(proc.pid, signal.SIGKILL)  # mid-run of ids[0]
        proc.wait(10)
        proc = start(base, port, log)
        for pid in ids:
            wait_for(lambda pid=pid: http(f"{url}/history/{pid}"))
        history = http(url + "/history")
        assert list(history) == [quick, *ids]  # whole, and finished in queue order
        assert all(h["status"]["status_str"] == "success" for h in history.values())
        runs = (base / "output" / "runs.txt").read_text().split()
        assert sorted(runs) == sorted([quick, *ids]) and len(runs) == 4  # each ran to the end exactly once
        assert http(f"{url}/api/jobs/{ids[0]}")["attempts"] == 2
        assert http(f"{url}/api/jobs/{ids[1]}")["attempts"] == 1
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
