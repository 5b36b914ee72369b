"""`diffgraph serve` (and `python main.py`): start the HTTP + websocket server with ComfyUI's flags.

Loads the built-in nodes and custom_nodes packs through engine.plugins, binds ComfyUI's
`PromptServer.instance` for packs, prints the URL (with the token when one is required), and serves.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from server.config import ServerConfig
from server.config import add_arguments as add_server_arguments

log = logging.getLogger("diffgraph.serve")
PICKLE_ENV = "DIFFGRAPH_ALLOW_PICKLE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_server_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def main(args: argparse.Namespace) -> int:
    from aiohttp import web

    from server.app import create_app
    from server.compat import PromptServer

    logging.basicConfig(level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig.from_args(args, argv=sys.argv).with_token()
    if config.allow_pickle:
        os.environ[PICKLE_ENV] = "1"  # read by the checkpoint loaders in this process
    try:
        app = create_app(config, prompt_server=PromptServer.instance)
    except (OSError, ValueError) as exc:  # unreadable extra_model_paths, unwritable user dir, ...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for url in urls(config):
        print(f"To see the GUI go to: {url}", flush=True)
    web.run_app(app, host=config.hosts, port=config.port, print=None, access_log=None)
    return 0


def urls(config: ServerConfig) -> list[str]:
    suffix = f"/?token={config.auth_token}" if config.auth_required and config.auth_token else ""
    out = []
    for host in config.hosts:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        shown = f"[{shown}]" if ":" in shown else shown
        out.append(f"http://{shown}:{config.port}{suffix}")
    return list(dict.fromkeys(out))
