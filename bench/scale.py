"""Scaling out with `--ray`: throughput of independent CPU-bound prompts with 1 and 2 Ray workers against the
in-process worker, all in one run, plus the dispatch overhead and the extra latency of a relayed event.

Each prompt is Seed(i) -> Burn(~1 s of one core, pure Python) -> Out, with a different seed so nothing is
cached. The nodes are written as a node pack into a temporary base directory, so the server and every Ray
worker load them as they load a user's pack. "Done" is the websocket's executing{node: null}.
- throughput: N prompts posted at once, first POST to last done; the goal on 2 cores is 2 workers >= 1.8x one.
- dispatch: POST -> execution_start at the client, for an empty prompt (Burn 0 s), median of M.
- relay: a node stamps the wall clock (ms) into progress events; the client's receive time minus the stamp,
  median, against the in-process worker in the same run.
Usage: python bench/scale.py [--prompts 8] [--seconds 1.0] [--samples 20]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from server.app import create_app  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.state import WORKER  # noqa: E402

PACK = '''
import time
from engine import FLOAT, INT, Input, Output, node


@node("ScaleSeed")
class ScaleSeed:
    inputs = (Input("value", INT, default=0, min=0, max=10**9),)
    outputs = (Output(INT),)

    def run(self, value):
        return (value,)


@node("ScaleBurn")
class ScaleBurn:
    inputs = (Input("value", INT), Input("seconds", FLOAT, default=1.0, min=0.0, max=60.0))
    outputs = (Output(INT),)

    def run(self, value, seconds, ctx):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            sum(range(2000))
        return (value,)


@node("ScaleStamp")
class ScaleStamp:
    """Progress events whose value is the wall clock in ms (mod 1e9), 20 ms apart."""
    inputs = (Input("value", INT), Input("count", INT, default=10, min=1, max=1000))
    outputs = (Output(INT),)

    def run(self, value, count, ctx):
        for _ in range(count):
            ctx.progress(int(time.time() * 1000) % 10**9, 10**9)
            time.sleep(0.02)
        return (value,)


@node("ScaleOut", output_node=True)
class ScaleOut:
    inputs = (Input("value", INT),)
    outputs = ()

    def run(self, value):
        return {"ui": {"value": [value]}, "result": ()}


NODE_CLASS_MAPPINGS = {c.NODE_NAME: c for c in (ScaleSeed, ScaleBurn, ScaleStamp, ScaleOut)}
'''


def burn_prompt(seed: int, seconds: float) -> dict:
    return {"1": {"class_type": "ScaleSeed", "inputs": {"value": seed}},
            "2": {"class_type": "ScaleBurn", "inputs": {"value": ["1", 0], "seconds": seconds}},
            "3": {"class_type": "ScaleOut", "inputs": {"value": ["2", 0]}}}


def stamp_prompt(seed: int) -> dict:
    return {"1": {"class_type": "ScaleSeed", "inputs": {"value": seed}},
            "2": {"class_type": "ScaleStamp", "inputs": {"value": ["1", 0], "count": 10}},
            "3": {"class_type": "ScaleOut", "inputs": {"value": ["2", 0]}}}


async def open_server(base: Path, workers: int | None) -> TestClient:
    config = ServerConfig(base_directory=base, load_builtin_nodes=False,
                          ray=None if workers is None else "local", ray_workers=workers)
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    backend = client.app[WORKER]
    if hasattr(backend, "wait_ready"):
        assert await asyncio.to_thread(backend.wait_ready, 300), "Ray workers did not start"
    return client


async def post(client: TestClient, prompt: dict) -> str:
    res = await client.post("/prompt", json={"prompt": prompt, "client_id": "bench"})
    assert res.status == 200, await res.text()
    return (await res.json())["prompt_id"]


async def until_done(ws, pending: set[str], on_frame=None) -> None:
    while pending:
        msg = await ws.receive_json(timeout=600)
        if on_frame is not None:
            on_frame(msg)
        data = msg.get("data", {})
        if msg["type"] == "execution_error":
            raise RuntimeError(f"prompt failed: {data.get('exception_message')}")
        if msg["type"] == "executing" and data.get("node") is None:
            pending.discard(data.get("prompt_id"))


async def measure(base: Path, workers: int | None, args: argparse.Namespace, seed0: int) -> dict[str, float]:
    client = await open_server(base, workers)
    try:
        ws = await client.ws_connect("/ws?clientId=bench")
        await ws.receive_json()
        # warm-up: each worker loads the pack and runs once
        await until_done(ws, {await post(client, burn_prompt(seed0 + 999, 0.05)) for _ in range(1)})
        started = time.perf_counter()
        ids = {await post(client, burn_prompt(seed0 + i, args.seconds)) for i in range(args.prompts)}
        await until_done(ws, ids)
        elapsed = time.perf_counter() - started
        dispatch = []
        for i in range(args.samples):
            sent = time.perf_counter()
            pid = await post(client, burn_prompt(seed0 + 10_000 + i, 0.0))
            seen: dict[str, float] = {}

            def note(msg: dict, seen=seen, pid=pid) -> None:
                if msg["type"] == "execution_start" and msg["data"].get("prompt_id") == pid:
                    seen.setdefault("start", time.perf_counter())
            await until_done(ws, {pid}, note)
            dispatch.append(seen["start"] - sent)
        relay = []

        def stamp(msg: dict) -> None:
            if msg["type"] == "progress" and msg["data"].get("max") == 10**9:
                relay.append(((time.time() * 1000) % 10**9 - msg["data"]["value"]) / 1000)
        for i in range(3):
            await until_done(ws, {await post(client, stamp_prompt(seed0 + 20_000 + i))}, stamp)
        return {"elapsed": elapsed, "rate": args.prompts / elapsed, "dispatch": statistics.median(dispatch),
                "relay": statistics.median(relay)}
    finally:
        await client.close()


def cpu_line() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


async def main_async(args: argparse.Namespace) -> None:
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        (base / "custom_nodes").mkdir(parents=True)
        (base / "custom_nodes" / "scale_nodes.py").write_text(PACK, encoding="utf-8")
        results = {"in-process": await measure(base, None, args, 0)}
        ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, logging_level="WARNING",
                 runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
        try:
            results["ray, 1 worker"] = await measure(base, 1, args, 100_000)
            results["ray, 2 workers"] = await measure(base, 2, args, 200_000)
        finally:
            ray.shutdown()
    print(f"CPU: {cpu_line()}")
    print(f"{args.prompts} prompts of {args.seconds:.1f} s of one core each; dispatch = POST -> execution_start "
          f"(median of {args.samples}); relay = node -> websocket client for a progress event (median)")
    print(f"{'backend':<16} {'total s':>8} {'prompts/s':>10} {'dispatch ms':>12} {'relay ms':>9}")
    for name, r in results.items():
        print(f"{name:<16} {r['elapsed']:8.2f} {r['rate']:10.2f} {r['dispatch'] * 1000:12.1f} "
              f"{r['relay'] * 1000:9.1f}")
    one, two, local = results["ray, 1 worker"], results["ray, 2 workers"], results["in-process"]
    print(f"2 Ray workers / 1 Ray worker throughput: {two['rate'] / one['rate']:.2f}x (goal >= 1.8x on 2 cores)")
    print(f"2 Ray workers / in-process throughput: {two['rate'] / local['rate']:.2f}x")
    print(f"extra dispatch per prompt vs in-process: {(one['dispatch'] - local['dispatch']) * 1000:.1f} ms; "
          f"extra relay latency per event: {(one['relay'] - local['relay']) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=20)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
