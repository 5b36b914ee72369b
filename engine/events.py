"""Execution events, named and shaped as ComfyUI's websocket messages, and the EventSink protocol.

The executor emits these; the server turns them into websocket frames and history, the CLI into
progress bars. The engine itself knows nothing of websockets.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Event:
    """Base of every event. `type` is ComfyUI's message type; `data()` its payload."""

    prompt_id: str

    type = "event"
    timestamped = False

    def data(self) -> dict[str, Any]:
        payload = asdict(self)
        if not self.timestamped:
            payload.pop("timestamp", None)
        return payload


@dataclass
class ExecutionStart(Event):
    timestamp: int = field(default_factory=now_ms)
    type = "execution_start"
    timestamped = True


@dataclass
class ExecutionCached(Event):
    nodes: list[str] = field(default_factory=list)
    timestamp: int = field(default_factory=now_ms)
    type = "execution_cached"
    timestamped = True


@dataclass
class Executing(Event):
    node: str | None = None
    display_node: str | None = None
    type = "executing"


@dataclass
class Progress(Event):
    node: str | None = None
    value: int = 0
    max: int = 0
    type = "progress"


@dataclass
class Preview(Event):
    """A preview image for a node (`image` is whatever the node passed, e.g. ("JPEG", PIL image, size))."""

    node: str | None = None
    image: Any = None
    type = "preview"

    def data(self) -> dict[str, Any]:
        return {"prompt_id": self.prompt_id, "node": self.node}


@dataclass
class Executed(Event):
    node: str = ""
    display_node: str = ""
    output: dict[str, Any] = field(default_factory=dict)
    type = "executed"


@dataclass
class ExecutionSuccess(Event):
    timestamp: int = field(default_factory=now_ms)
    type = "execution_success"
    timestamped = True


@dataclass
class ExecutionError(Event):
    node_id: str = ""
    node_type: str = ""
    executed: list[str] = field(default_factory=list)
    exception_message: str = ""
    exception_type: str = ""
    traceback: list[str] = field(default_factory=list)
    current_inputs: dict[str, Any] = field(default_factory=dict)
    current_outputs: list[str] = field(default_factory=list)
    timestamp: int = field(default_factory=now_ms)
    type = "execution_error"
    timestamped = True


@dataclass
class ExecutionInterruptedEvent(Event):
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = field(default_factory=list)
    timestamp: int = field(default_factory=now_ms)
    type = "execution_interrupted"
    timestamped = True


class EventSink(Protocol):
    """Anything that accepts events. Called from the executor's thread; must not block for long."""

    def emit(self, event: Event) -> None: ...


class ListSink:
    """Collects events in a list (tests, CLI summaries)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]


class NullSink:
    def emit(self, event: Event) -> None:
        pass
