"""The engine's error hierarchy: one root, a wrapper for node failures, and a cancel signal.

Every error a user can see derives from `EngineError` and says what was wrong and how to fix it.
`ExecutionInterrupted` derives from BaseException so a node's `except Exception` cannot swallow a cancel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class NodeDefinitionError(EngineError):
    """A node class is declared wrongly (raised when it is defined or registered)."""


@dataclass(frozen=True)
class WorkflowIssue:
    """One problem found in a workflow, in ComfyUI's error vocabulary.

    `code` is ComfyUI's error type (e.g. ``required_input_missing``); `node_id` is None for
    problems with the whole workflow (``prompt_no_outputs``).
    """

    node_id: str | None
    input: str | None
    code: str
    message: str
    details: str = ""
    extra_info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.code, "message": self.message, "details": self.details,
                "extra_info": dict(self.extra_info)}


class WorkflowError(EngineError):
    """A workflow failed validation; carries every issue found, not only the first.

    `response` is ComfyUI's 400 body: ``{"error": {...}, "node_errors": {...}}``.
    """

    def __init__(self, issues: list[WorkflowIssue], response: dict[str, Any]):
        self.issues = list(issues)
        self.response = response
        lines = [f"{i.node_id or '-'}: {i.details or i.message}" for i in self.issues]
        super().__init__(response["error"]["message"] + ("\n" + "\n".join(lines) if lines else ""))


class NodeExecutionError(EngineError):
    """A node raised while running. The original exception is `__cause__`."""

    def __init__(self, node_id: str, class_type: str, inputs: dict[str, str], cause: BaseException):
        self.node_id = node_id
        self.class_type = class_type
        self.inputs = inputs
        self.cause = cause
        super().__init__(f"node {node_id} ({class_type}) failed: {type(cause).__name__}: {cause}")


class PluginLoadError(EngineError):
    """A node pack could not be loaded. Recorded in the LoadReport; never stops start-up."""


class ExecutionInterrupted(BaseException):
    """The run was cancelled. Raised at node boundaries and at progress reports."""

    def __init__(self, run_id: str | None = None, node_id: str | None = None):
        self.run_id = run_id
        self.node_id = node_id
        super().__init__(f"run {run_id} interrupted" + (f" at node {node_id}" if node_id else ""))
