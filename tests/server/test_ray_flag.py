"""`--ray` is opt-in: without it the server never imports Ray; with it the flags reach the config."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from server.config import ServerConfig, add_arguments

REPO = Path(__file__).resolve().parents[2]


def test_without_the_flag_ray_is_never_imported(tmp_path):
    code = ("import sys, pathlib; from server.app import create_app; from server.config import ServerConfig; "
            f"app = create_app(ServerConfig(base_directory=pathlib.Path({str(tmp_path)!r}), "
            "load_builtin_nodes=False)); print(type(app[__import__('server.state').state.WORKER]).__name__, "
            "'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "Worker False", out.stderr[-2000:]


def parse(*argv: str) -> ServerConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return ServerConfig.from_args(parser.parse_args(list(argv)))


def test_ray_flags_reach_the_config():
    assert parse().ray is None
    assert parse("--ray").ray == "local"
    config = parse("--ray", "auto", "--ray-workers", "4", "--ray-outputs", "shared", "--ray-attempts", "5")
    assert (config.ray, config.ray_workers, config.ray_outputs, config.ray_attempts) == ("auto", 4, "shared", 5)
    assert parse("--ray", "10.0.0.5:6379").ray == "10.0.0.5:6379"
