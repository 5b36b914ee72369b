"""Server throughput and latency: prompts accepted per second, and POST -> done for a fully cached prompt.

A real server (aiohttp on a TCP port, SQLite queue with fsync per accepted prompt) over a temporary
base directory with two trivial nodes. "Done" is the websocket's executing{node: null}.
References, measured in the same run: a bare aiohttp JSON handler (the HTTP stack's ceiling) for the
accept rate, and Executor.run of the same cached prompt in-process (the engine's own time) for latency.
Usage: python bench/server.py [--accept 500] [--latency 200] [--concurrency 8]
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


def ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 2 else values[0] * 1000


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(ServerConfig(base_directory=Path(tmp), load_builtin_nodes=False), registry())
        runner, url = await serve(app)
        try:
            latency = await cached_latency(url, args.latency)
            rate = await accept_rate(url, "/prompt", args.accept, args.concurrency,
                                     lambda i: {"prompt": prompt(1000 + i)})
        finally:
            await runner.cleanup()
        fsync = fsync_ms(Path(tmp))
    bare = await bare_aiohttp_rate(args.accept, args.concurrency)
    engine = await asyncio.to_thread(engine_latency, args.latency)  # Executor.run has its own loop
    print(f"accepted prompts/s      {rate:8.0f}   (bare aiohttp JSON handler {bare:.0f}/s; ratio {rate / bare:.2f})")
    print(f"POST->done, cached      median {statistics.median(latency) * 1000:.2f} ms, p95 {ms(latency, 95):.2f} ms"
          f"   (Executor.run in-process median {statistics.median(engine) * 1000:.3f} ms; "
          f"ratio {statistics.median(latency) / statistics.median(engine):.0f}x)")
    print(f"fsync on this disk      median {fsync:.2f} ms (two per prompt: accepted, finished)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accept", type=int, default=500, help="prompts to POST for the accept rate")
    parser.add_argument("--latency", type=int, default=200, help="cached prompts to time")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients for the accept rate")
    asyncio.run(main(parser.parse_args()))
