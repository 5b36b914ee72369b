"""Calling one node: gather its inputs, map it over lists, call it in an error boundary, read its returns.

This is the only place user node code is called during a run. Exceptions become NodeFailure
records (type, message, traceback, short input reprs); ExecutionInterrupted passes through.
"""
from __future__ import annotations

import asyncio
import inspect
import traceback
from dataclasses import dataclass, field
from typing import Any

from .context import CancelToken, RunContext, call_with_context
from .dynprompt import LivePrompt
from .errors import ExecutionInterrupted
from .events import EventSink, Executed, Executing
from .values import is_blocker, is_link, short_repr
from .workflow import NodeSpec, Workflow


@dataclass
class NodeFailure:
    """One node that raised: what it was, what it got, and what went wrong."""

    node_id: str
    class_type: str
    exception_type: str
    message: str
    traceback: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return f"node {self.node_id} ({self.class_type}) failed: {self.exception_type}: {self.message}"


class NodeRunner:
    """Runs nodes of one workflow run. Returns (outputs, ui) or a NodeFailure."""

    def __init__(self, executor: Any, workflow: Workflow, run_id: str, sink: EventSink,
                 extra_data: dict[str, Any], token: CancelToken) -> None:
        self.ex, self.wf, self.run_id, self.sink = executor, workflow, run_id, sink
        self.extra_data, self.token = extra_data, token
        self.block_errors: dict[str, list[NodeFailure]] = {}  # node id -> blockers with a message it met
        self.expansions: dict[str, dict[str, Any]] = {}  # node id -> the graph its calls returned
        self.real_ids: dict[str, str] = {}  # ephemeral node id -> the prompt node that (transitively) made it
        self.expansion_count = 0
        self.dynprompt = LivePrompt(workflow.prompt)  # parents and display ids of ephemeral nodes
        self.display_ids = self.dynprompt.ephemeral_display

    def emit_executed(self, nid: str, ui: dict[str, Any]) -> None:
        self.sink.emit(Executed(self.run_id, node=nid, display_node=self.display_ids.get(nid, nid), output=ui))

    def _context(self, spec: NodeSpec) -> RunContext:
        return RunContext(self.run_id, spec.id, spec.class_type, self.wf.prompt, self.extra_data, self.sink,
                          self.token, self.ex.services)

    def _inputs(self, spec: NodeSpec, values: dict[str, list[list[Any]]], lazy_missing: bool = False
                ) -> dict[str, list[Any]]:
        """Every input as a list (ComfyUI's internal form): constants [v], links the source slot's list."""
        data: dict[str, list[Any]] = {name: [value] for name, value in spec.constants.items()}
        for name, (src, slot) in spec.links.items():
            if src in values:
                data[name] = values[src][slot]
            elif lazy_missing or spec.is_lazy(name):  # a lazy input nobody asked for is None, as in ComfyUI
                data[name] = [None]
        hidden = spec.schema.hidden
        for name, kind in hidden.items():
            data[name] = [{"PROMPT": self.wf.prompt, "DYNPROMPT": self.dynprompt,
                           "EXTRA_PNGINFO": self.extra_data.get("extra_pnginfo"),
                           "UNIQUE_ID": spec.id}.get(kind, self.extra_data.get(name.lower()))]
        return data

    def _calls(self, spec: NodeSpec, data: dict[str, list[Any]]) -> list[dict[str, Any]]:
        """Keyword arguments of each call: once with whole lists, or mapped with the last item repeated."""
        if spec.schema.input_is_list:
            return [dict(data)]
        if any(len(v) == 0 for v in data.values()):
            return []
        count = max((len(v) for v in data.values()), default=1)
        return [{k: v[min(i, len(v) - 1)] for k, v in data.items()} for i in range(count)]

    async def lazy_status(self, nid: str, values: dict[str, list[list[Any]]], lazy: list[str]
                          ) -> list[str] | NodeFailure:
        """The lazy inputs `check_lazy_status` (sync or async) still wants; a NodeFailure when it raises."""
        spec = self.wf.nodes[nid]
        inst = self.ex.instance_for(nid, spec.class_type, spec.schema.cls)
        data = self._inputs(spec, values, lazy_missing=True)
        kwargs = dict(data) if spec.schema.input_is_list else {k: v[0] if v else None for k, v in data.items()}
        fn = inst.check_lazy_status
        params = inspect.signature(fn).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in params}
        ctx = self._context(spec)
        try:
            wanted = call_with_context(ctx, fn, **kwargs)
            if inspect.isawaitable(wanted):
                wanted = await wanted
        except ExecutionInterrupted:
            raise
        except Exception as exc:  # the error boundary: a raising check_lazy_status fails its node
            return self._failure(spec, exc, [kwargs])
        if isinstance(wanted, str):
            wanted = [wanted]
        return [w for w in wanted or [] if w in lazy and spec.links[w][0] not in values]

    def _prepare(self, nid: str, values: dict[str, list[list[Any]]]) -> tuple[NodeSpec, Any, Any, list]:
        spec = self.wf.nodes[nid]
        self.sink.emit(Executing(self.run_id, node=nid, display_node=self.display_ids.get(nid, nid)))
        inst = self.ex.instance_for(nid, spec.class_type, spec.schema.cls)
        fn = getattr(inst, spec.schema.function)
        calls = self._calls(spec, self._inputs(spec, values))
        ctx = self._context(spec)
        self.expansion_count += 1
        ctx.graph_prefix = f"{self.real_ids.get(nid, nid)}.{self.expansion_count}."
        if spec.schema.wants_ctx:
            for kwargs in calls:
                kwargs["ctx"] = ctx
        return spec, fn, ctx, calls

    def run_sync(self, nid: str, values: dict[str, list[list[Any]]]) -> Any:
        spec, fn, ctx, calls = self._prepare(nid, values)
        try:
            results = []
            for kwargs in calls:
                ctx.check_cancelled()
                block = self._blocker(spec, kwargs)
                results.append(block if block is not None else call_with_context(ctx, fn, **kwargs))
            return self._finish(spec, results)
        except ExecutionInterrupted:
            raise
        except Exception as exc:  # the error boundary around user code
            return self._failure(spec, exc, calls)

    async def run_async(self, nid: str, values: dict[str, list[list[Any]]]) -> Any:
        spec, fn, ctx, calls = self._prepare(nid, values)

        async def one(kwargs: dict[str, Any]) -> Any:
            ctx.activate()  # each gathered call runs in its own task, with its own context copy
            block = self._blocker(spec, kwargs)
            return block if block is not None else await fn(**kwargs)
        try:
            ctx.check_cancelled()
            results = list(await asyncio.gather(*(one(k) for k in calls)))
            return self._finish(spec, results)
        except ExecutionInterrupted:
            raise
        except Exception as exc:  # the error boundary around user code
            return self._failure(spec, exc, calls)

    def _blocker(self, spec: NodeSpec, kwargs: dict[str, Any]) -> Any:
        """The blocker this call meets (in an input, or in an input list), as a silent one; else None.

        A blocker with a message is reported once, as an error on this node (ComfyUI's
        "Execution Blocked: ..."); what it passes on downstream is silent."""
        for name, value in kwargs.items():
            items = value if spec.schema.input_is_list and isinstance(value, list) else [value]
            block = next((v for v in items if is_blocker(v)), None)
            if block is None:
                continue
            message = getattr(block, "message", None)
            if message is None:
                return block
            self.block_errors.setdefault(spec.id, []).append(NodeFailure(
                spec.id, spec.class_type, "ExecutionBlocked", f"Execution Blocked: {message}",
                inputs={name: short_repr(block)}))
            return type(block)(None)
        return None

    def _finish(self, spec: NodeSpec, results: list[Any]) -> tuple[list[list[Any]], dict[str, Any] | None]:
        n_out = len(spec.schema.output_types)
        outputs: list[list[Any]] = [[] for _ in range(n_out)]
        ui: dict[str, Any] | None = None
        for ret in results:
            expands = isinstance(ret, dict) and ret.get("expand") is not None
            if is_blocker(ret):  # a blocked call (or a node returning a blocker) blocks every output
                for slot in range(n_out):
                    outputs[slot].append(ret)
                continue
            if isinstance(ret, dict) and ret.get("expand") is not None:
                graph = ret["expand"]
                if not isinstance(graph, dict):
                    raise TypeError(f"{spec.class_type}: 'expand' must be a graph dict (GraphBuilder.finalize()), "
                                    f"got {type(graph).__name__}")
                self.expansions.setdefault(spec.id, {}).update(graph)
            values, call_ui = _split_return(spec, ret, n_out)
            if call_ui is not None:
                ui = ui or {}
                for key, val in call_ui.items():
                    ui.setdefault(key, []).extend(val if isinstance(val, (list, tuple)) else [val])
            for slot, value in enumerate(values):
                if spec.schema.output_is_list[slot] and not is_blocker(value) and not (expands and is_link(value)):
                    outputs[slot].extend(value)
                else:
                    outputs[slot].append(value)
        if ui is not None:
            self.emit_executed(spec.id, ui)
        return outputs, ui

    def _failure(self, spec: NodeSpec, exc: Exception, calls: list[dict[str, Any]]) -> NodeFailure:
        first = calls[0] if calls else {}
        # hidden inputs are never reported: they carry the prompt, or credentials from extra_data
        hidden = spec.schema.hidden
        inputs = {k: short_repr(v) for k, v in first.items() if k != "ctx" and k not in hidden}
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        return NodeFailure(spec.id, spec.class_type, type(exc).__name__, str(exc), tb, inputs)


def _split_return(spec: NodeSpec, ret: Any, n_out: int) -> tuple[tuple, dict[str, Any] | None]:
    ui = None
    if isinstance(ret, dict):
        ui = ret.get("ui")
        ret = ret.get("result", ())
    if ret is None and n_out == 0:
        ret = ()
    if not isinstance(ret, (tuple, list)):
        raise TypeError(f"{spec.class_type}.{spec.schema.function} must return a tuple of {n_out} value(s) "
                        f"or a dict with 'result'/'ui', got {type(ret).__name__}")
    if len(ret) != n_out:
        raise TypeError(f"{spec.class_type}.{spec.schema.function} returned {len(ret)} value(s); "
                        f"RETURN_TYPES declares {n_out}")
    if ui is not None and not isinstance(ui, dict):
        raise TypeError(f"{spec.class_type}: 'ui' must be a dict, got {type(ui).__name__}")
    return tuple(ret), ui
