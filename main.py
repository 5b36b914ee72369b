"""`python main.py --listen 127.0.0.1 --port 8188`: ComfyUI's entry point, the same as `diffgraph serve`."""
from __future__ import annotations

import argparse
import sys

from diffgraph import cmd_serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="main.py", description="Diffgraph server (ComfyUI-compatible flags)")
    cmd_serve.add_arguments(parser)
    return cmd_serve.main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
