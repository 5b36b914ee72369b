"""The Ray backend (`--ray`) through the HTTP/websocket API, on one local Ray instance (2 CPUs) per module.

Fake nodes (tests/server/ray_fakes.py) are installed as a node pack in the server's custom_nodes, so the
server and each worker load them the way they load a user's packs. Ray starts slowly on a small machine:
the tests are few and each checks several things on one server with two workers.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import struct
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

import ray_fakes  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from srv_helpers import events_until_done, post_prompt, wait_done, wait_running  # noqa: E402

from server.app import create_app  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.state import WORKER  # noqa: E402

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One Ray instance for the module; workers import this checkout (not an installed copy)."""
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
             logging_level="WARNING")
    yield
    ray.shutdown()


def ray_base(base: Path) -> Path:
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("ray_fakes.py"), base / "custom_nodes" / "ray_fakes.py")
    return base


async def ray_client(base: Path, **overrides) -> TestClient:
    settings = {"load_builtin_nodes": False, "ray": "local", "ray_workers": 2, **overrides}
    config = ServerConfig(base_directory=ray_base(base), **settings)
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    assert await asyncio.to_thread(client.app[WORKER].wait_ready, 120), "the Ray workers did not start"
    return client


def pid_of(entry: dict) -> int:
    return entry["outputs"]["5"]["pid"][0]


async def test_two_workers_run_each_prompt_once_in_parallel_with_events_in_order_and_outputs_viewable(base):
    client = await ray_client(base)
    try:
        stats = await (await client.get("/system_stats")).json()
        workers = stats["workers"]
        assert [w["name"] for w in workers] == ["ray-0", "ray-1"] and {w["device"] for w in workers} == {"cpu"}
        worker_pids = {w["pid"] for w in workers}
        assert len(worker_pids) == 2 and os.getpid() not in worker_pids

        ws_a = await client.ws_connect("/ws?clientId=a")
        ws_b = await client.ws_connect("/ws?clientId=b")
        await ws_a.receive_json(), await ws_b.receive_json()
        # two 1 s prompts from two clients: in parallel on the two workers, each client hears only its own
        started = time.perf_counter()
        pa = (await post_prompt(client, ray_fakes.who(1, 1.0, seed=1), client_id="a"))["prompt_id"]
        pb = (await post_prompt(client, ray_fakes.who(2, 1.0, seed=2), client_id="b"))["prompt_id"]
        await wait_running(client, pa)
        queue = await (await client.get("/queue")).json()
        jobs = await (await client.get("/api/jobs")).json()
        frames_a, frames_b = await events_until_done(ws_a, pa), await events_until_done(ws_b, pb)
        ha, hb = await wait_done(client, pa), await wait_done(client, pb)
        assert time.perf_counter() - started < 1.9, "the two prompts did not run at the same time"
        assert {pid_of(ha), pid_of(hb)} == worker_pids
        assert queue["workers"].get(pa) in ("ray-0", "ray-1")
        assert any(j["id"] == pa and j["worker"] == queue["workers"][pa] for j in jobs["jobs"])
        for frames, pid in ((frames_a, pa), (frames_b, pb)):
            assert {f["data"].get("prompt_id") for f in frames if "prompt_id" in f["data"]} == {pid}
            kinds = [f["type"] for f in frames if f["type"] != "status"]
            assert kinds[:2] == ["execution_start", "execution_cached"]
            assert kinds[-2:] == ["execution_success", "executing"]
            progress = [f["data"]["value"] for f in frames if f["type"] == "progress"]
            assert len(progress) >= 3 and progress == sorted(progress) and progress[-1] == 100
            executing = [f["data"]["node"] for f in frames if f["type"] == "executing"]
            assert executing.index("2") < executing.index("3") and executing[-1] is None

        # affinity: the same seed again goes to the worker that holds Seed -> Burn(1 s) in its cache; take
        # the prompt that ran on ray-1, which a plain tie-break (the lowest index) would not pick
        second = next(w["pid"] for w in workers if w["name"] == "ray-1")
        seed = 1 if pid_of(ha) == second else 2
        for _ in range(2):
            again = (await post_prompt(client, ray_fakes.who(3, 1.0, seed=seed)))["prompt_id"]
            entry = await wait_done(client, again)
            assert pid_of(entry) == second
            assert {"1", "2", "3"} <= set(next(m[1]["nodes"] for m in entry["status"]["messages"]
                                          if m[0] == "execution_cached"))

        # outputs written in a worker's private folder come back through the object store; /view serves them
        saves = [(await post_prompt(client, {"1": {"class_type": "Seed", "inputs": {"value": v}},
                                             "2": {"class_type": "SaveText",
                                                   "inputs": {"value": ["1", 0], "filename_prefix": "same"}}}))
                 ["prompt_id"] for v in (10, 11)]
        names = set()
        for pid in saves:
            image = (await wait_done(client, pid))["outputs"]["2"]["images"][0]
            res = await client.get("/view", params={"filename": image["filename"], "type": "output"})
            assert res.status == 200 and (await res.text()).startswith("value 1")
            names.add(image["filename"])
        assert len(names) == 2, "two workers' files of the same name must not overwrite each other"
        assert len(list((base / "output").glob("same_*.txt"))) == 2
    finally:
        await client.close()


async def test_cancel_reaches_the_worker_and_a_killed_worker_reruns_its_prompt_once_elsewhere(base):
    client = await ray_client(base, ray_attempts=2)
    try:
        # cancel: a 20 s prompt on a worker ends within a moment of POST /interrupt
        long = (await post_prompt(client, ray_fakes.who(1, 20.0, seed=5)))["prompt_id"]
        await wait_running(client, long)
        await asyncio.sleep(0.3)
        started = time.perf_counter()
        assert (await client.post("/interrupt", json={"prompt_id": long})).status == 200
        entry = await wait_done(client, long, timeout=10)
        assert time.perf_counter() - started < 3
        assert [m[0] for m in entry["status"]["messages"]][-1] == "execution_interrupted"

        # kill -9 the worker process running a prompt: it runs again, once, and history shows the retry
        victim = (await post_prompt(client, ray_fakes.who(2, 2.0, seed=6)))["prompt_id"]
        await wait_running(client, victim)
        await asyncio.sleep(0.5)
        workers = (await (await client.get("/system_stats")).json())["workers"]
        doomed = next(w for w in workers if w["running"] == victim)
        os.kill(doomed["pid"], signal.SIGKILL)
        entry = await wait_done(client, victim, timeout=60)
        assert entry["status"]["status_str"] == "success"
        assert pid_of(entry) != doomed["pid"]
        kinds = [m[0] for m in entry["status"]["messages"]]
        assert kinds.count("execution_retry") == 1 and kinds.count("execution_success") == 1
        job = await (await client.get(f"/api/jobs/{victim}")).json()
        assert job["attempts"] == 2 and job["status"] == "success"
        history = await (await client.get("/history")).json()
        assert list(history).count(victim) == 1
        workers = (await (await client.get("/system_stats")).json())["workers"]
        assert all(w["ready"] for w in workers) and doomed["pid"] not in {w["pid"] for w in workers}

        # a prompt that kills every worker it starts on fails after --ray-attempts, and the others go on
        deadly = (await post_prompt(client, {"1": {"class_type": "Seed", "inputs": {"value": 1}},
                                             "2": {"class_type": "Die", "inputs": {"value": ["1", 0]}}}))["prompt_id"]
        after = (await post_prompt(client, ray_fakes.who(4, 0.0, seed=7)))["prompt_id"]
        entry = await wait_done(client, deadly, timeout=90)
        error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
        assert error["exception_type"] == "WorkerLost" and "started 2 times" in error["exception_message"]
        assert (await wait_done(client, after, timeout=60))["status"]["status_str"] == "success"
        job = await (await client.get(f"/api/jobs/{deadly}")).json()
        assert job["attempts"] == 2 and job["status"] == "error"
    finally:
        await client.close()


async def test_shared_output_folder_mode_and_previews_reach_the_submitting_client(base):
    client = await ray_client(base, ray_outputs="shared", preview_method="auto")
    try:
        ws = await client.ws_connect("/ws?clientId=p")
        await ws.receive_json()
        pid = (await post_prompt(client, {"1": {"class_type": "Seed", "inputs": {"value": 3}},
                                          "2": {"class_type": "Peek", "inputs": {"value": ["1", 0]}},
                                          "3": {"class_type": "SaveText",
                                                "inputs": {"value": ["2", 0], "filename_prefix": "shared"}}},
                                   client_id="p"))["prompt_id"]
        frames = []
        while True:
            msg = await ws.receive(timeout=30)
            frames.append(msg.data)
            if isinstance(msg.data, str) and '"node": null' in msg.data and pid in msg.data:
                break
        previews = [f for f in frames if isinstance(f, bytes)]
        assert previews == [struct.pack(">II", 1, 1) + ray_fakes.PREVIEW_BYTES]
        image = (await wait_done(client, pid))["outputs"]["3"]["images"][0]
        assert image["filename"] == "shared_00001_.txt"  # written by the worker straight into our folder
        res = await client.get("/view", params={"filename": image["filename"], "type": "output"})
        assert res.status == 200 and (await res.text()).startswith("value 3 pid ")
        assert int((await res.text()).split()[-1]) in {w["pid"] for w in
                                                        (await (await client.get("/system_stats")).json())["workers"]}
    finally:
        await client.close()


async def test_a_second_prompt_on_the_same_checkpoint_goes_to_the_worker_that_loaded_it(base):
    torch = pytest.importorskip("torch")
    from nodes.sd.tiny import write_tiny_checkpoint

    write_tiny_checkpoint(base / "models" / "checkpoints" / "tiny.safetensors", 0, dtype=torch.float16)
    client = await ray_client(base, load_builtin_nodes=True, cpu=True)
    try:
        def on_ckpt(value: int) -> dict:
            return {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny.safetensors"}},
                    "2": {"class_type": "ModelPid", "inputs": {"model": ["1", 0], "value": value}}}
        # ray-0 is busy, so the checkpoint loads on ray-1; then with both idle, a plain tie-break would
        # pick ray-0, affinity picks ray-1 (which holds the loaded checkpoint)
        busy = (await post_prompt(client, ray_fakes.who(1, 1.5, seed=9)))["prompt_id"]
        await wait_running(client, busy)
        first = await wait_done(client, (await post_prompt(client, on_ckpt(1)))["prompt_id"], timeout=120)
        await wait_done(client, busy)
        workers = (await (await client.get("/system_stats")).json())["workers"]
        holder = next(w["pid"] for w in workers if w["name"] == "ray-1")
        assert first["outputs"]["2"]["pid"] == [holder], first["status"]
        second = await wait_done(client, (await post_prompt(client, on_ckpt(2)))["prompt_id"], timeout=120)
        assert second["outputs"]["2"]["pid"] == [holder]
        cached = next(m[1]["nodes"] for m in second["status"]["messages"] if m[0] == "execution_cached")
        assert "1" in cached, "the checkpoint was loaded again"
    finally:
        await client.close()


async def test_front_keeps_its_meaning_and_a_restarted_server_runs_the_interrupted_prompt(base):
    client = await ray_client(base)
    try:
        busy = [(await post_prompt(client, ray_fakes.who(i, 1.0, seed=20 + i)))["prompt_id"] for i in range(2)]
        for pid in busy:
            await wait_running(client, pid)
        back = (await post_prompt(client, ray_fakes.who(3, 0.0, seed=30)))["prompt_id"]
        first = (await post_prompt(client, ray_fakes.who(4, 0.0, seed=31), front=True))["prompt_id"]
        for pid in (back, first):
            await wait_done(client, pid)
        jobs = {j["id"]: j for j in (await (await client.get("/api/jobs")).json())["jobs"]}
        assert jobs[first]["started_at"] < jobs[back]["started_at"]
        # a server stopped with a prompt running on a worker: after a restart it runs, once
        long = (await post_prompt(client, ray_fakes.who(5, 3.0, seed=40)))["prompt_id"]
        await wait_running(client, long)
    finally:
        await client.close()
    client = await ray_client(base)
    try:
        entry = await wait_done(client, long, timeout=60)
        assert entry["status"]["status_str"] == "success"
        history = await (await client.get("/history")).json()
        assert list(history).count(long) == 1 and len(history) == 5
    finally:
        await client.close()
