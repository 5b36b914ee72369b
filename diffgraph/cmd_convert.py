"""`diffgraph convert`: a UI-format (editor) workflow to the API format that POST /prompt takes.

Node schemas come from the built-in nodes and custom_nodes packs, or, with `--object-info`, from a
saved `GET /object_info` reply (no node code is imported then). Warnings go to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.convert import ConversionError, convert_workflow, mapping_node_info, registry_node_info


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", type=Path, help="UI-format workflow JSON (as the editor saves it)")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write here instead of stdout")
    parser.add_argument("--object-info", type=Path, default=None,
                        help="node schemas from a saved /object_info JSON instead of loading node packs")
    parser.add_argument("--base-directory", type=Path, default=Path.cwd(), help="where custom_nodes/ is")
    parser.add_argument("--disable-all-custom-nodes", action="store_true")
    parser.add_argument("--body", action="store_true", help='wrap the result as a POST /prompt body {"prompt": ...}')


def main(args: argparse.Namespace) -> int:
    try:
        workflow = json.loads(args.workflow.read_text(encoding="utf-8"))
        node_info = _node_info(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        conv = convert_workflow(workflow, node_info)
    except ConversionError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    for warning in conv.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    text = json.dumps({"prompt": conv.prompt} if args.body else conv.prompt, indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _node_info(args: argparse.Namespace):
    if args.object_info is not None:
        data = json.loads(args.object_info.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{args.object_info}: not an /object_info object")
        return mapping_node_info(data)
    from engine import FolderPaths, NodeRegistry, activate_paths
    from engine.plugins import load_builtin, load_packs

    paths = activate_paths(FolderPaths(args.base_directory))
    registry = NodeRegistry()
    load_builtin(registry)
    if not args.disable_all_custom_nodes:
        load_packs(paths.custom_nodes, registry)
    return registry_node_info(registry)
