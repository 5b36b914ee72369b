"""`diffgraph train-demo`: train the bundled shapes model (nodes/demo/train.py) from the command line.

The defaults reproduce the shipped checkpoint; `--install` copies the EMA and raw files to
models/checkpoints/ (diffgraph-shapes[-raw].safetensors) so CheckpointLoaderSimple lists them and
workflows/ema_blend.json finds the raw weights.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import fields
from pathlib import Path

SHIPPED_NAME = "diffgraph-shapes.safetensors"
RAW_NAME = "diffgraph-shapes-raw.safetensors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as a --flag (underscores become dashes), plus --install."""
    from nodes.demo.train import TrainConfig

    defaults = TrainConfig()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value, help=f"(default: {value})")
    parser.add_argument("--install", action="store_true",
                        help=f"copy the EMA and raw checkpoints to models/checkpoints/ ({SHIPPED_NAME}, {RAW_NAME})")


def main(args: argparse.Namespace) -> int:
    """Run the training; print the summary; return 0 on success."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from nodes.demo.train import TrainConfig, run

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    summary = run(cfg)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    if args.install:
        from engine import active_paths

        folder = Path(active_paths().models["checkpoints"][0])
        folder.mkdir(parents=True, exist_ok=True)
        for name in (SHIPPED_NAME, RAW_NAME):
            shutil.copyfile(Path(cfg.out_dir) / name, folder / name)
            print(f"installed {folder / name}")
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="diffgraph train-demo", description=__doc__)
    add_arguments(_parser)
    raise SystemExit(main(_parser.parse_args()))
