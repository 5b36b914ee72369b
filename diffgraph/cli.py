"""The `diffgraph` console script: one subcommand per module, imported only when used.

Each command module exposes `add_arguments(parser)` and `main(args) -> int`, so `diffgraph run`
never pays for aiohttp and `diffgraph serve` never for the training code.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "serve": ("diffgraph.cmd_serve", "start the HTTP + websocket server (same flags as main.py)"),
    "run": ("diffgraph.cmd_run", "run an API-format workflow without a server"),
    "validate": ("diffgraph.cmd_run", "check a workflow and print every problem"),
    "convert": ("diffgraph.cmd_convert", "convert a UI-format workflow to API format"),
    "nodes": ("diffgraph.cmd_nodes", "install, list, update, remove, disable and enable node packs"),
    "train-demo": ("diffgraph.cmd_train", "train the bundled demo model"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffgraph", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # only the chosen command's module is imported
            mod = importlib.import_module(module)
            adder = getattr(mod, f"add_{name.replace('-', '_')}_arguments", mod.add_arguments)
            adder(cmd)
            cmd.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    runner = getattr(args._module, f"main_{args.command.replace('-', '_')}", args._module.main)
    return int(runner(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
