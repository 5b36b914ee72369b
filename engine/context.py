"""RunContext: what a running node may know and do (progress, previews, cancel, run metadata).

Typed nodes receive it as the `ctx` argument; any node (V1 classes, compatibility shims) can reach
the active one through `current_context()`, which is a contextvar set around each node call.
"""
from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ExecutionInterrupted
from .events import Event, NullSink, Preview, Progress

_CURRENT: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("diffgraph_run_context",
                                                                                default=None)


class CancelToken:
    """A thread-safe cancel flag for one run."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class RunContext:
    """Per-node view of a run. Cheap to create; one per node call.

    Attributes: `run_id` (the prompt id), `node_id`, `class_type`, `prompt` (the API workflow),
    `extra_data` (the request's extra_data, secrets removed), `sink` (event sink).
    """

    run_id: str
    node_id: str
    class_type: str
    prompt: dict[str, Any] = field(default_factory=dict)
    extra_data: dict[str, Any] = field(default_factory=dict)
    sink: Any = field(default_factory=NullSink)
    cancel_token: CancelToken = field(default_factory=CancelToken)
    services: dict[str, Any] = field(default_factory=dict)
    graph_prefix: str = ""  # id prefix for nodes this call creates by graph expansion (unique in the run)
    graphs_made: int = 0

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    def check_cancelled(self) -> None:
        """Raise ExecutionInterrupted if the run was cancelled. Cheap: call it often."""
        if self.cancel_token.cancelled:
            raise ExecutionInterrupted(self.run_id, self.node_id)

    def progress(self, value: int, total: int, preview: Any = None) -> None:
        """Report `value` of `total` steps done (and optionally a preview); also a cancel point."""
        self.check_cancelled()
        self.sink.emit(Progress(self.run_id, node=self.node_id, value=int(value), max=int(total)))
        if preview is not None:
            self.sink.emit(Preview(self.run_id, node=self.node_id, image=preview))

    def emit(self, event: Event) -> None:
        self.sink.emit(event)

    def activate(self) -> contextvars.Token:
        return _CURRENT.set(self)


def current_context() -> RunContext | None:
    """The RunContext of the node running in this thread/task, or None outside a run."""
    return _CURRENT.get()


def call_with_context(context: RunContext, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call `fn` with `context` as the current RunContext (positional-only, so kwargs may hold `ctx`)."""
    token = _CURRENT.set(context)
    try:
        return fn(*args, **kwargs)
    finally:
        _CURRENT.reset(token)
