"""The worker side of the Ray backend: `PromptActor`, one Ray actor per GPU (or CPU slot).

Each actor holds its own Executor, node registry (the built-ins and the same custom_nodes as the
server, loaded by the same code) and cache. `run` is a streaming generator: the executor's events in
order, then the output files (in transfer mode), then the result. server/ray_backend.py drives it.
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

import ray

from engine import NodeRegistry, activate_paths
from engine.cache import compute_keys
from engine.context import CancelToken
from engine.executor import Executor
from engine.graph import topological_order
from engine.workflow import validate_prompt

from .config import ServerConfig

log = logging.getLogger(__name__)


def prompt_keys(registry: NodeRegistry, prompt: dict[str, Any], targets: list[str] | None) -> set[str]:
    """The cache keys a prompt's nodes would have (empty when it no longer validates)."""
    try:
        report = validate_prompt(prompt, registry, targets or None)
        wf = report.workflow
        if not report.ok or wf is None:
            return set()
        order = wf.order or topological_order(wf.nodes, wf.deps())
        return set(compute_keys(order, wf.nodes).values())
    except Exception:  # affinity is a preference: never fail a dispatch over it
        log.debug("cache keys of a prompt could not be computed", exc_info=True)
        return set()


# --- the actor (runs in a Ray worker process) ---

class _QueueSink:
    def __init__(self, out: queue.Queue) -> None:
        self.out = out

    def emit(self, event: Any) -> None:
        self.out.put(("event", event))


class PromptActor:
    """One worker: its own Executor, node registry (built-ins + the same custom_nodes) and model cache."""

    def __init__(self, config: ServerConfig, name: str) -> None:
        from .app import load_nodes  # the same pack loading as the server, in this process

        self.name = name
        paths = config.folder_paths()
        self.transfer = config.ray_outputs == "transfer"
        if self.transfer:  # a private output/temp folder; files travel back through the object store
            private = Path(tempfile.mkdtemp(prefix=f"diffgraph-{name}-"))
            paths.output, paths.temp = private / "output", private / "temp"
        self.private = private if self.transfer else None
        paths.ensure_dirs()
        activate_paths(paths)
        self.paths = paths
        self.registry, _ = load_nodes(config, paths.custom_nodes)
        services = {"preview_method": config.preview_method, "device": "cpu" if config.cpu else None}
        self.executor = Executor(self.registry, cache_policy=config.cache,
                                 cache_budget_bytes=config.cache_budget_bytes, services=services)
        self.held: set[str] = set()
        self.tokens: dict[str, CancelToken] = {}
        self.cancelled: set[str] = set()
        self.lock = threading.Lock()

    def info(self) -> dict[str, Any]:
        ctx = ray.get_runtime_context()
        gpus = [str(g) for g in ray.get_gpu_ids()]
        return {"name": self.name, "pid": os.getpid(), "node_id": ctx.get_node_id(),
                "node_ip": ray.util.get_node_ip_address(), "gpus": gpus,
                "device": f"cuda (GPU {','.join(gpus)})" if gpus else "cpu"}

    def cancel(self, prompt_id: str) -> bool:
        with self.lock:
            token = self.tokens.get(prompt_id)
            if token is None:
                self.cancelled.add(prompt_id)  # arrived before the run started
                return False
        token.cancel()
        return True

    def free(self) -> None:
        self.executor.free()
        self.held.clear()

    def close(self) -> None:
        """Before a graceful kill: remove the private output folder (files were sent back already)."""
        if self.private is not None:
            shutil.rmtree(self.private, ignore_errors=True)

    def run(self, prompt_id: str, prompt: dict[str, Any], targets: list[str], extra: dict[str, Any]):
        """A generator: ("event", Event)..., ("file", kind, subfolder, name, bytes)..., ("result", dict)."""
        out: queue.Queue = queue.Queue()
        token = CancelToken()
        with self.lock:
            self.tokens[prompt_id] = token
            if prompt_id in self.cancelled:
                self.cancelled.discard(prompt_id)
                token.cancel()

        def work() -> None:
            try:
                result = self.executor.run(prompt, run_id=prompt_id, sink=_QueueSink(out), targets=targets or None,
                                           extra_data=extra, cancel=token)
                out.put(("result", self._summary(result)))
            except BaseException as exc:  # an engine bug: reported, the worker lives on
                out.put(("crash", f"{type(exc).__name__}: {exc}", traceback.format_exception(exc)))

        thread = threading.Thread(target=work, name=f"diffgraph-{self.name}", daemon=True)
        thread.start()
        try:
            while True:
                item = out.get()
                if item[0] != "event":
                    break
                yield item
        finally:
            thread.join()
            with self.lock:
                self.tokens.pop(prompt_id, None)
        if item[0] == "result" and self.transfer:
            yield from self._files(item[1]["outputs"])
        yield item

    def _summary(self, result: Any) -> dict[str, Any]:
        report = result.validation
        wf = getattr(report, "workflow", None)
        if wf is not None:
            order = wf.order or topological_order(wf.nodes, wf.deps())
            self.held |= set(compute_keys(order, wf.nodes).values())
        self.held = {k for k in self.held if k in self.executor.cache}
        text = report.text() if result.status == "invalid" and report is not None else None
        return {"status": result.status, "outputs": result.outputs, "validation_text": text,
                "held": sorted(self.held)}

    def _files(self, outputs: dict[str, Any]):
        for ui in (outputs or {}).values():
            for value in (ui.values() if isinstance(ui, dict) else ()):
                for item in (value if isinstance(value, list) else ()):
                    if isinstance(item, dict) and "filename" in item and item.get("type") in ("output", "temp"):
                        root = self.paths.output if item["type"] == "output" else self.paths.temp
                        path = root / str(item.get("subfolder") or "") / str(item["filename"])
                        if path.is_file():
                            yield ("file", item["type"], str(item.get("subfolder") or ""), str(item["filename"]),
                                   path.read_bytes())
                            path.unlink()
