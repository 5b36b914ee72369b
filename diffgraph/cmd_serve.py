"""`diffgraph serve` (and `python main.py`): start the HTTP + websocket server with ComfyUI's flags.

Loads the built-in nodes and custom_nodes packs through engine.plugins, binds ComfyUI's
`PromptServer.instance` for packs, prints the URL (with the token when one is required), and serves.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from server.config import ServerConfig
from server.config import add_arguments as add_server_arguments

log = logging.getLogger("diffgraph.serve")
PICKLE_ENV = "DIFFGRAPH_ALLOW_PICKLE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument("--queue-workflow", action="append", default=[], type=Path, metavar="FILE",
                        help="once listening, queue this workflow (API or UI format) through POST /prompt; "
                             "repeatable")


def main(args: argparse.Namespace) -> int:
    from aiohttp import web

    from server.app import create_app
    from server.compat import PromptServer
    from server.store import StoreLockedError

    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig.from_args(args, argv=sys.argv).with_token()
    if config.allow_pickle:
        os.environ[PICKLE_ENV] = "1"  # read by the checkpoint loaders in this process
    try:
        app = create_app(config, prompt_server=PromptServer.instance)
    except (OSError, ValueError, StoreLockedError) as exc:  # unreadable extra_model_paths, a second server...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for url in urls(config):
        print(f"To see the GUI go to: {url}", flush=True)
    pending: list[Any] = []  # holds the start-up task so it is not garbage-collected
    if args.queue_workflow:
        app.on_startup.append(lambda app: _queue_at_start(pending, config, args.queue_workflow))
    web.run_app(app, host=config.hosts, port=config.port, print=None, access_log=None)
    return 0


async def _queue_at_start(pending: list[Any], config: ServerConfig, files: list[Path]) -> None:
    """Schedule the --queue-workflow files: posted to our own POST /prompt once the port is open, so
    they go through exactly the validation and queue a client's prompt does."""
    import asyncio

    async def post_all() -> None:
        import aiohttp
        host = "127.0.0.1" if config.hosts[0] in ("0.0.0.0", "::", "localhost") else config.hosts[0]
        base = f"http://{'[' + host + ']' if ':' in host else host}:{config.port}"
        headers = {"Authorization": f"Bearer {config.auth_token}"} if config.auth_token else {}
        await asyncio.sleep(0.2)  # let run_app finish binding the port
        async with aiohttp.ClientSession(headers=headers) as session:
            for path in files:
                try:
                    body = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    log.error("--queue-workflow %s: %s", path, exc)
                    continue
                if isinstance(body, dict) and isinstance(body.get("nodes"), list):
                    async with session.post(f"{base}/api/workflow/convert", json=body) as resp:
                        converted = await resp.json()
                    body = converted.get("prompt", body) if resp.status == 200 else body
                prompt = body.get("prompt", body) if isinstance(body, dict) else body
                async with session.post(f"{base}/prompt", json={"prompt": prompt}) as resp:
                    reply = await resp.json()
                if resp.status == 200:
                    log.info("queued %s as prompt %s", path, reply.get("prompt_id"))
                else:
                    log.error("--queue-workflow %s was refused: %s", path, json.dumps(reply)[:2000])

    pending.append(asyncio.get_running_loop().create_task(post_all()))


def urls(config: ServerConfig) -> list[str]:
    suffix = f"/?token={config.auth_token}" if config.auth_required and config.auth_token else ""
    out = []
    for host in config.hosts:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        shown = f"[{shown}]" if ":" in shown else shown
        out.append(f"http://{shown}:{config.port}{suffix}")
    return list(dict.fromkeys(out))
