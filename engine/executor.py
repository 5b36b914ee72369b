"""The executor: runs a validated workflow, only what is needed and changed, inside error boundaries.

One run: validate, compute cache keys, emit `execution_start`/`execution_cached`, then run ready
nodes in dependency order (sync nodes one at a time, `async def` nodes concurrently on one event
loop), expanding lazy inputs on demand. A failing node stops only its descendants; cancel is seen
before each node and at every progress report.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import expansion
from .cache import OutputCache, compute_keys
from .context import CancelToken
from .errors import ExecutionInterrupted
from .events import (
    EventSink,
    ExecutionCached,
    ExecutionError,
    ExecutionInterruptedEvent,
    ExecutionStart,
    ExecutionSuccess,
    NullSink,
)
from .graph import ancestors, topological_order
from .registry import NodeRegistry
from .runner import NodeFailure, NodeRunner
from .workflow import ValidationReport, Workflow, validate_prompt


@dataclass
class RunResult:
    """What a run did. `status`: success | error | interrupted | invalid (validation failed)."""

    run_id: str
    status: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[NodeFailure] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    interrupted_at: str | None = None
    validation: ValidationReport | None = None
    values: dict[str, list[list[Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "success"


class Executor:
    """Runs workflows against one NodeRegistry, keeping outputs in an OutputCache across runs."""

    def __init__(self, registry: NodeRegistry, cache_policy: str = "lru", cache_budget_bytes: int = 4 << 30,
                 services: dict[str, Any] | None = None) -> None:
        self.registry = registry
        self.cache = OutputCache(cache_policy, cache_budget_bytes)
        self.services = services or {}
        self._tokens: dict[str, CancelToken] = {}
        self._lock = threading.Lock()
        self._instances: dict[tuple[str, str], Any] = {}

    def cancel(self, run_id: str) -> bool:
        """Cancel a running run by id; False when no run with that id is in progress."""
        with self._lock:
            token = self._tokens.get(run_id)
        if token is None:
            return False
        token.cancel()
        return True

    def free(self) -> None:
        """Drop every cached output and node instance."""
        self.cache.clear()
        self._instances.clear()

    def validate(self, prompt: Any, targets: list[str] | None = None) -> ValidationReport:
        return validate_prompt(prompt, self.registry, targets)

    def run(self, prompt: Any, run_id: str | None = None, sink: EventSink | None = None,
            targets: list[str] | None = None, extra_data: dict[str, Any] | None = None,
            cancel: CancelToken | None = None, report: ValidationReport | None = None) -> RunResult:
        """Validate (unless `report` is given) and run a workflow; never raises for node errors.

        Blocks until the run ends. It works from any thread: where this thread already runs an event loop
        (a notebook, an async application, a plugin's async route) the run gets its own loop on a helper
        thread, since a loop cannot be nested. Async code should `await run_async(...)` instead, which
        leaves the caller's loop free while nodes work.
        """
        args = (prompt, run_id, sink, targets, extra_data, cancel, report)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run_blocking(*args)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="diffgraph-run") as pool:
            return pool.submit(contextvars.copy_context().run, self._run_blocking, *args).result()

    async def run_async(self, prompt: Any, run_id: str | None = None, sink: EventSink | None = None,
                        targets: list[str] | None = None, extra_data: dict[str, Any] | None = None,
                        cancel: CancelToken | None = None, report: ValidationReport | None = None) -> RunResult:
        """`run` for async callers: the run happens on a worker thread (with its own event loop), so the
        caller's loop keeps serving while a model samples. Cancelling the awaiting task cancels the run."""
        token = cancel or CancelToken()
        future = asyncio.ensure_future(asyncio.to_thread(
            self._run_blocking, prompt, run_id, sink, targets, extra_data, token, report))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            token.cancel()
            raise

    def _run_blocking(self, prompt: Any, run_id: str | None, sink: EventSink | None, targets: list[str] | None,
                      extra_data: dict[str, Any] | None, cancel: CancelToken | None,
                      report: ValidationReport | None) -> RunResult:
        """One run on a fresh event loop in this thread (which must not be running one)."""
        run_id = run_id or uuid.uuid4().hex
        report = report or self.validate(prompt, targets)
        if not report.ok or report.workflow is None:
            return RunResult(run_id, "invalid", validation=report)
        with self._lock:
            token = cancel or CancelToken()
            self._tokens[run_id] = token
        try:
            plan = _Run(self, report.workflow, run_id, sink or NullSink(), extra_data or {}, token)
            result = asyncio.run(plan.execute())
        finally:
            with self._lock:
                self._tokens.pop(run_id, None)
        result.validation = report
        return result

    def instance_for(self, node_id: str, class_type: str, cls: type) -> Any:
        """Node instances persist across runs per (node id, class), as in ComfyUI."""
        key = (node_id, class_type)
        inst = self._instances.get(key)
        if inst is None or type(inst) is not cls:
            inst = self._instances[key] = cls()
        return inst


class _Run:
    """The state of one run: what is done, what waits on what, and the outputs so far."""

    def __init__(self, executor: Executor, workflow: Workflow, run_id: str, sink: EventSink,
                 extra_data: dict[str, Any], token: CancelToken) -> None:
        workflow = dataclasses.replace(workflow, nodes=dict(workflow.nodes))  # expansion adds nodes to the copy
        self.ex, self.wf, self.run_id, self.sink = executor, workflow, run_id, sink
        self.token = token
        self.runner = NodeRunner(executor, workflow, run_id, sink, extra_data, token)
        self.values: dict[str, list[list[Any]]] = {}   # node id -> per-slot value lists
        self.ui: dict[str, dict[str, Any]] = {}
        self.waiting: dict[str, int] = {}               # node id -> unresolved strong inputs
        self.dependents: dict[str, list[str]] = {}
        self.scheduled: set[str] = set()
        self.done: set[str] = set()
        self.failed: set[str] = set()
        self.blocked: set[str] = set()
        self.ready: list[str] = []
        self.result = RunResult(run_id, "success")
        self.lazy_requested: dict[str, set[str]] = {}
        self.pending_expansion: dict[str, tuple[list[list[Any]], Any]] = {}  # node id -> (outputs with links, ui)
        self.snapshot = executor.registry.snapshot()

    async def execute(self) -> RunResult:
        wf = self.wf
        order = wf.order or topological_order(wf.nodes, wf.deps())
        self.keys = compute_keys(order, wf.nodes)
        self.order_index = {nid: i for i, nid in enumerate(order)}
        self.by_key: dict[str, list[str]] = {}
        for nid, key in self.keys.items():
            self.by_key.setdefault(key, []).append(nid)
        self.sink.emit(ExecutionStart(self.run_id))
        strong = {nid: spec.dependencies(include_lazy=False) for nid, spec in wf.nodes.items()}
        needed = ancestors(wf.outputs, strong)
        cached = [nid for nid in order if nid in needed and self.keys[nid] in self.ex.cache]
        self.sink.emit(ExecutionCached(self.run_id, nodes=cached))
        for nid in cached:
            self._take_cached(nid)
        self.result.cached = list(cached)
        try:
            self._schedule(wf.outputs)
            await self._loop()
        except ExecutionInterrupted as exc:
            return self._interrupted(exc)
        return self._finish()

    def _take_cached(self, nid: str) -> None:
        entry = self.ex.cache.get(self.keys[nid])
        if entry is None:
            return
        self.values[nid] = entry.outputs
        self.done.add(nid)
        if entry.ui is not None:
            self.ui[nid] = entry.ui
            self.runner.emit_executed(nid, entry.ui)

    def _schedule(self, roots: list[str]) -> None:
        """Add `roots` and their not-yet-available strong ancestors to the run (iteratively)."""
        stack = [r for r in roots if r not in self.scheduled and r not in self.done]
        new: list[str] = []
        while stack:
            nid = stack.pop()
            if nid in self.scheduled or nid in self.done:
                continue
            if self.keys[nid] in self.ex.cache:  # a lazy branch computed by an earlier run
                self._take_cached(nid)
                if nid in self.done:
                    self.result.cached.append(nid)
                    continue
            self.scheduled.add(nid)
            new.append(nid)
            spec = self.wf.nodes[nid]
            stack.extend(d for d in spec.dependencies(include_lazy=False)
                         if d not in self.scheduled and d not in self.done)
        for nid in sorted(new, key=self.order_index.__getitem__):
            self._wire(nid, self.wf.nodes[nid].dependencies(include_lazy=False))

    def _wire(self, nid: str, sources: list[str]) -> None:
        pending = {s for s in sources if s not in self.done}
        blocked = any(s in self.failed or s in self.blocked for s in pending)
        if blocked:
            self._block(nid)
            return
        self.waiting[nid] = self.waiting.get(nid, 0) + len(pending)
        for src in pending:
            self.dependents.setdefault(src, []).append(nid)
        if self.waiting[nid] == 0:
            self.ready.append(nid)

    async def _loop(self) -> None:
        running: dict[asyncio.Task, str] = {}
        while self.ready or running:
            while self.ready:
                nid = self.ready.pop(0)
                if self.token.cancelled:
                    raise ExecutionInterrupted(self.run_id, nid)
                if nid in self.pending_expansion:
                    self._finish_expansion(nid)
                    continue
                if self._resolve_by_key(nid) or not await self._lazy_ready(nid):
                    continue
                if self.wf.nodes[nid].schema.is_async:
                    running[asyncio.ensure_future(self.runner.run_async(nid, self.values))] = nid
                    await asyncio.sleep(0)
                    continue
                self._complete(nid, self.runner.run_sync(nid, self.values))
            if running:
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    nid = running.pop(task)
                    exc = task.exception()
                    if isinstance(exc, ExecutionInterrupted):
                        for other in running:
                            other.cancel()
                        raise exc
                    self._complete(nid, task.result())

    def _resolve_by_key(self, nid: str) -> bool:
        """An identical node (same key) already ran in this run: reuse its outputs."""
        key = self.keys[nid]
        for other in self.by_key.get(key, ()):
            if other != nid and other in self.done and other not in self.failed:
                self.values[nid] = self.values[other]
                if other in self.ui:
                    self.ui[nid] = self.ui[other]
                    self.runner.emit_executed(nid, self.ui[other])
                self._mark_done(nid)
                return True
        return False

    async def _lazy_ready(self, nid: str) -> bool:
        """Ask a node with lazy inputs which ones it needs; schedule those and wait if any.

        Without `check_lazy_status` every lazy input is needed (ComfyUI's default)."""
        spec = self.wf.nodes[nid]
        lazy = [n for n in spec.links if spec.is_lazy(n)]
        if not lazy:
            return True
        wanted = await self.runner.lazy_status(nid, self.values, lazy) \
            if hasattr(spec.schema.cls, "check_lazy_status") else lazy
        if isinstance(wanted, NodeFailure):
            self._complete(nid, wanted)
            return False
        needed = [spec.links[n][0] for n in wanted if n in spec.links and spec.links[n][0] not in self.done]
        if not needed:
            return True
        self._schedule(needed)
        self._wire(nid, needed)
        return False

    def _complete(self, nid: str, outcome: Any) -> None:
        if isinstance(outcome, NodeFailure):
            self.result.failures.append(outcome)
            self.failed.add(nid)
            for dep in self.dependents.pop(nid, []):
                self._block(dep)
            return
        outputs, ui = outcome
        self.result.failures.extend(self.runner.block_errors.pop(nid, ()))
        graph = self.runner.expansions.pop(nid, None)
        if graph:
            self._expand(nid, outputs, ui, graph)
            return
        self.values[nid] = outputs
        self.result.executed.append(nid)
        if ui is not None:
            self.ui[nid] = ui
        self.ex.cache.put(self.keys[nid], outputs, ui)
        self._mark_done(nid)

    def _expand(self, nid: str, outputs: list[list[Any]], ui: Any, graph: dict[str, Any]) -> None:
        """Add the node's expanded graph to the plan; the node completes when what it links to is done."""
        try:
            linked = expansion.add_expansion(self, nid, outputs, graph)
        except expansion.ExpansionError as exc:
            self._complete(nid, expansion.failure(self, nid, exc))
            return
        self.pending_expansion[nid] = (outputs, ui)
        self._schedule(linked)
        self._wire(nid, [src for src in linked if src in self.keys])
        if nid in self.blocked:
            self.pending_expansion.pop(nid)

    def _finish_expansion(self, nid: str) -> None:
        outputs, ui = self.pending_expansion.pop(nid)
        self._complete(nid, (expansion.resolve(self, outputs), ui))

    def _mark_done(self, nid: str) -> None:
        self.done.add(nid)
        for dep in self.dependents.pop(nid, []):
            if dep in self.blocked:
                continue
            self.waiting[dep] -= 1
            if self.waiting[dep] == 0:
                self.ready.append(dep)

    def _block(self, nid: str) -> None:
        stack = [nid]
        while stack:
            node = stack.pop()
            if node in self.blocked:
                continue
            self.blocked.add(node)
            stack.extend(self.dependents.pop(node, []))

    def _interrupted(self, exc: ExecutionInterrupted) -> RunResult:
        node = exc.node_id
        self.sink.emit(ExecutionInterruptedEvent(
            self.run_id, node_id=node, node_type=self.wf.nodes[node].class_type if node in self.wf.nodes else None,
            executed=list(self.result.executed)))
        self.result.status = "interrupted"
        self.result.interrupted_at = node
        self._collect()
        return self.result

    def _finish(self) -> RunResult:
        self._collect()
        if not self.result.failures:
            self.sink.emit(ExecutionSuccess(self.run_id))
            return self.result
        self.result.status = "error"
        for failure in self.result.failures:
            self.sink.emit(ExecutionError(
                self.run_id, node_id=failure.node_id, node_type=failure.class_type,
                executed=list(self.result.executed), exception_message=failure.message,
                exception_type=failure.exception_type, traceback=failure.traceback,
                current_inputs={k: [v] for k, v in failure.inputs.items()},
                current_outputs=sorted(self.values)))
        return self.result

    def _collect(self) -> None:
        self.result.outputs = {nid: ui for nid, ui in self.ui.items() if nid in self.wf.prompt}
        self.result.blocked = sorted(self.blocked)
        self.result.values = self.values
