"""`diffgraph run` and `diffgraph validate`: workflows from the command line, no server.

`run` loads the built-in nodes and custom_nodes packs, runs the workflow with a tqdm bar per node
and per step, prints where outputs went, and exits non-zero with the same error text the API
gives. `validate` prints every problem and exits 1 if there is any.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from engine import FolderPaths, NodeRegistry, activate_paths, active_paths
from engine.events import Event
from engine.executor import Executor
from engine.plugins import load_builtin, load_packs
from engine.workflow import validate_prompt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", type=Path, help="API-format workflow JSON (a UI-format file is converted)")
    parser.add_argument("--base-directory", type=Path, default=Path.cwd(),
                        help="folder holding models/, custom_nodes/, input/, output/ (default: current folder)")
    parser.add_argument("--output-directory", type=Path, default=None)
    parser.add_argument("--input-directory", type=Path, default=None)
    parser.add_argument("--disable-all-custom-nodes", action="store_true")
    parser.add_argument("--target", action="append", default=None, metavar="NODE_ID",
                        help="run only these output nodes (repeatable); default: every output node")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _setup(args: argparse.Namespace) -> NodeRegistry:
    paths = FolderPaths(args.base_directory, output=args.output_directory, input=args.input_directory)
    activate_paths(paths)
    paths.ensure_dirs()
    registry = NodeRegistry()
    builtin = load_builtin(registry)
    if builtin.state != "loaded":
        print(f"warning: built-in nodes failed to load: {builtin.error}", file=sys.stderr)
    if not args.disable_all_custom_nodes:
        report = load_packs(paths.custom_nodes, registry)
        for pack in report.failed:
            print(f"warning: node pack {pack.name} failed to load: {pack.error}", file=sys.stderr)
    return registry


def read_workflow(path: Path, registry: NodeRegistry) -> dict[str, Any]:
    """The API-format workflow in `path`; UI-format files (with "nodes" and "links") are converted."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"error: cannot read {path}: {exc}") from None
    if isinstance(data, dict) and "prompt" in data and isinstance(data["prompt"], dict):
        data = data["prompt"]  # a POST /prompt body
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        from engine.convert import ConversionError, convert_workflow, registry_node_info
        try:
            data = convert_workflow(data, registry_node_info(registry)).prompt
        except ConversionError as exc:
            raise SystemExit(f"error: {exc}") from None
    return data


def main_validate(args: argparse.Namespace) -> int:
    registry = _setup(args)
    report = validate_prompt(read_workflow(args.workflow, registry), registry, args.target)
    if args.json:
        print(json.dumps(report.response(), indent=2))
    elif report.node_errors or report.error:
        print(report.text())
    else:
        print(f"ok: {len(report.workflow.nodes)} nodes, outputs {', '.join(report.outputs)}")
    return 0 if report.ok and not report.node_errors else 1


class ProgressBars:
    """An EventSink drawing one tqdm bar for nodes and one for the steps of the running node."""

    def __init__(self, total: int) -> None:
        from tqdm import tqdm
        self._tqdm = tqdm
        self.nodes = tqdm(total=total, desc="nodes", unit="node", position=0, leave=True)
        self.steps = None
        self.class_of: dict[str, str] = {}

    def emit(self, event: Event) -> None:
        data = event.data()
        if event.type == "execution_cached":
            self.nodes.update(len(data["nodes"]))
        elif event.type == "executing" and data["node"] is not None:
            self._close_steps()
            self.nodes.set_postfix_str(f"{data['node']} {self.class_of.get(data['node'], '')}")
            self.nodes.update(1)
        elif event.type == "progress":
            if self.steps is None or self.steps.total != data["max"]:
                self._close_steps()
                # A node that reports one step (VAE Decode, a loader) has no rate worth showing: the
                # time between its first and only update would read as hundreds of thousands of steps/s.
                plain = {"bar_format": "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}"} if data["max"] <= 1 else {}
                self.steps = self._tqdm(total=data["max"], desc=f"  node {data['node']}", unit="step",
                                        position=1, leave=False, **plain)
            self.steps.n = data["value"]
            self.steps.refresh()

    def _close_steps(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None

    def close(self) -> None:
        self._close_steps()
        self.nodes.close()


def main_run(args: argparse.Namespace) -> int:
    registry = _setup(args)
    prompt = read_workflow(args.workflow, registry)
    executor = Executor(registry, cache_policy="none")
    report = executor.validate(prompt, args.target)
    if not report.ok:
        print(json.dumps(report.response(), indent=2) if args.json else report.text(), file=sys.stderr)
        return 2
    bars = ProgressBars(len(report.workflow.nodes))
    bars.class_of = {nid: spec.class_type for nid, spec in report.workflow.nodes.items()}
    extra = {"extra_pnginfo": {}}
    try:
        result = executor.run(prompt, sink=bars, extra_data=extra, report=report)
    finally:
        bars.close()
    return _print_result(result, args, active_paths())


def _file_path(item: dict[str, Any], paths: FolderPaths) -> str:
    """Where an output file really is: its type's folder (--output-directory, temp, input) + subfolder."""
    folder = paths.directory_by_type(item.get("type", "output")) or paths.output
    return str(folder / (item.get("subfolder") or "") / item["filename"])


def _print_result(result: Any, args: argparse.Namespace, paths: FolderPaths) -> int:
    if args.json:
        print(json.dumps({"status": result.status, "outputs": result.outputs,
                          "failures": [f.__dict__ for f in result.failures]}, indent=2, default=str))
    else:
        for nid, ui in result.outputs.items():
            for item in ui.get("images", []):
                if isinstance(item, dict) and "filename" in item:
                    print(f"node {nid}: {_file_path(item, paths)}")
            other = {k: v for k, v in ui.items() if k != "images"}
            if other:
                print(f"node {nid}: {json.dumps(other, default=str)[:500]}")
        for failure in result.failures:
            print("".join(failure.traceback).rstrip(), file=sys.stderr)
            print(f"error: {failure.text()}", file=sys.stderr)
        if result.status == "interrupted":
            print("interrupted", file=sys.stderr)
    return 0 if result.ok else 1


main = main_run
