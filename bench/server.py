"""Server throughput and latency: prompts accepted per second, and POST -> done for a fully cached prompt.

A real server (aiohttp on a TCP port, SQLite queue with fsync per accepted prompt) over a temporary
base directory with two trivial nodes. "Done" is the websocket's executing{node: null}.
References, measured in the same run: a bare aiohttp JSON handler (the HTTP stack's ceiling) for the
accept rate, and Executor.run of the same cached prompt in-process (the engine's own time) for latency.
Also: websocket ping latency while 1,000 history entries are read (GET /history) and deleted, against the
idle server's ping in the same run.
Usage: python bench/server.py [--accept 500] [--latency 200] [--history 1000] [--concurrency 8]
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from engine import INT, Input, NodeRegistry, Output, node  # noqa: E402
from engine.events import NullSink  # noqa: E402
from engine.executor import Executor  # noqa: E402
from server.app import create_app  # noqa: E402
from server.config import ServerConfig  # noqa: E402
from server.state import STORE  # noqa: E402


@node("BenchValue")
class BenchValue:
    inputs = (Input("value", INT, default=0, min=0, max=10**9),)
    outputs = (Output(INT),)

    def run(self, value):
        return (value,)


@node("BenchOut", output_node=True)
class BenchOut:
    inputs = (Input("value", INT),)
    outputs = ()

    def run(self, value):
        return {"ui": {"value": [value]}, "result": ()}


def registry() -> NodeRegistry:
    reg = NodeRegistry()
    reg.register(BenchValue, "BenchValue")
    reg.register(BenchOut, "BenchOut")
    return reg


def prompt(value: int) -> dict:
    return {"1": {"class_type": "BenchValue", "inputs": {"value": value}},
            "2": {"class_type": "BenchOut", "inputs": {"value": ["1", 0]}}}


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


async def accept_rate(url: str, path: str, count: int, concurrency: int, body_for) -> float:
    """POSTs per second with `concurrency` clients sharing one connection pool."""
    async with aiohttp.ClientSession() as session:
        queue = list(range(count))

        async def client():
            while queue:
                i = queue.pop()
                async with session.post(url + path, json=body_for(i)) as res:
                    assert res.status == 200, await res.text()
                    await res.read()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return count / (time.perf_counter() - started)


async def cached_latency(url: str, runs: int) -> list[float]:
    """Seconds from POST to executing{node: null} of one prompt whose outputs are all cached."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url + "/ws?clientId=bench") as ws:
            await ws.receive_json()
            times = []
            for i in range(runs + 1):
                started = time.perf_counter()
                async with session.post(url + "/prompt", json={"prompt": prompt(7), "client_id": "bench"}) as res:
                    pid = (await res.json())["prompt_id"]
                while True:
                    msg = await ws.receive_json()
                    if msg["type"] == "executing" and msg["data"]["node"] is None and msg["data"]["prompt_id"] == pid:
                        break
                if i:  # the first run fills the cache
                    times.append(time.perf_counter() - started)
            return times


async def bare_aiohttp_rate(count: int, concurrency: int) -> float:
    async def handler(request: web.Request) -> web.Response:
        await request.json()
        return web.json_response({"prompt_id": "x", "number": 1, "node_errors": {}})
    app = web.Application()
    app.router.add_post("/prompt", handler)
    runner, url = await serve(app)
    try:
        return await accept_rate(url, "/prompt", count, concurrency, lambda i: {"prompt": prompt(i)})
    finally:
        await runner.cleanup()


def engine_latency(runs: int) -> list[float]:
    ex = Executor(registry())
    ex.run(prompt(7), sink=NullSink())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        ex.run(prompt(7), sink=NullSink())
        times.append(time.perf_counter() - started)
    return times


def fsync_ms(folder: Path, count: int = 30) -> float:
    """Median fsync of a small write on this disk: an accepted prompt pays one, a finished one another."""
    path, times = folder / "fsync.probe", []
    with open(path, "wb") as fh:
        for _ in range(count):
            fh.write(b"x" * 4096)
            fh.flush()
            started = time.perf_counter()
            os.fsync(fh.fileno())
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def fill_history(store, count: int) -> None:
    """`count` finished jobs with a realistic body each, written straight through the store."""
    body = {str(i): {"class_type": "BenchValue", "inputs": {"value": i, "note": "x" * 200}} for i in range(20)}
    for i in range(count):
        pid = f"hist-{i:05d}"
        store.add(pid, store.next_number(), body, {"client_id": "bench"}, ["2"])
        job = store.claim_next(set())
        store.finish(job.prompt_id, "success", {"2": {"value": [i]}}, [["execution_start", {"prompt_id": pid}]], {})


async def ping_latency(url: str, seconds: float, load=None) -> list[float]:
    """Websocket ping -> pong round trips for `seconds`, while `load` (a coroutine) runs, if given."""
    out: list[float] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws?clientId=pinger",
                                                                      autoping=False) as ws:
        task = asyncio.ensure_future(load) if load is not None else None
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and not (task is not None and task.done()):
            started = time.perf_counter()
            await ws.ping(b"bench")
            while (await ws.receive()).type != aiohttp.WSMsgType.PONG:
                pass
            out.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)
        if task is not None:
            await task
    return out


async def history_load(url: str, rounds: int) -> None:
    """Read the whole history `rounds` times, then delete it 100 entries at a time."""
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            async with session.get(url + "/history") as res:
                await res.read()
        async with session.get(url + "/history") as res:
            ids = list(await res.json())
        for i in range(0, len(ids), 100):
            async with session.post(url + "/history", json={"delete": ids[i:i + 100]}) as res:
                await res.read()


def cpu_line() -> str:
    """The CPU model and its bf16 features (figures differ between the machines here)."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    bf16 = sorted(f for f in flags if "bf16" in f or f.startswith("amx"))
    return f"{model}, {os.cpu_count()} cores, bf16 features: {', '.join(bf16) or 'none'}"


def ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 2 else values[0] * 1000


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(ServerConfig(base_directory=Path(tmp), load_builtin_nodes=False), registry())
        fill_history(app[STORE], args.history)  # before the worker starts, so it claims none of them
        runner, url = await serve(app)
        try:
            idle_ping = await ping_latency(url, 1.0)
            busy_ping = await ping_latency(url, 120.0, history_load(url, 5))
            latency = await cached_latency(url, args.latency)
            rate = await accept_rate(url, "/prompt", args.accept, args.concurrency,
                                     lambda i: {"prompt": prompt(1000 + i)})
        finally:
            await runner.cleanup()
        fsync = fsync_ms(Path(tmp))
    bare = await bare_aiohttp_rate(args.accept, args.concurrency)
    engine = await asyncio.to_thread(engine_latency, args.latency)  # Executor.run has its own loop
    print(f"CPU: {cpu_line()}")
    print(f"accepted prompts/s      {rate:8.0f}   (bare aiohttp JSON handler {bare:.0f}/s; ratio {rate / bare:.2f})")
    print(f"POST->done, cached      median {statistics.median(latency) * 1000:.2f} ms, p95 {ms(latency, 95):.2f} ms"
          f"   (Executor.run in-process median {statistics.median(engine) * 1000:.3f} ms; "
          f"ratio {statistics.median(latency) / statistics.median(engine):.0f}x)")
    print(f"ws ping, {args.history} history   median {statistics.median(busy_ping) * 1000:.2f} ms, "
          f"max {max(busy_ping) * 1000:.1f} ms while GET /history x5 and deleting it in 100s "
          f"(idle server: median {statistics.median(idle_ping) * 1000:.2f} ms, max {max(idle_ping) * 1000:.1f} ms; "
          f"ratio of max {max(busy_ping) / max(idle_ping):.1f}x)")
    print(f"fsync on this disk      median {fsync:.2f} ms (two per prompt: accepted, finished)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accept", type=int, default=500, help="prompts to POST for the accept rate")
    parser.add_argument("--latency", type=int, default=200, help="cached prompts to time")
    parser.add_argument("--history", type=int, default=1000, help="history entries read and deleted under ping")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients for the accept rate")
    asyncio.run(main(parser.parse_args()))
