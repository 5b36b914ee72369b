"""ComfyUI's `comfy_execution.graph` names that packs use: ExecutionBlocker, DynamicPrompt.

DynamicPrompt is the engine's LivePrompt (what the DYNPROMPT hidden input carries).

A blocker is a value a node returns in place of an output: every node that consumes it is not called
and passes a (silent) blocker on. With a message, the first consumer is reported as failed with
"Execution Blocked: <message>"; with None nothing is reported. The engine recognises a blocker by the
class attribute `blocks_execution` (engine.values.is_blocker), so it never imports this module.
"""
from __future__ import annotations

from engine.dynprompt import LivePrompt as DynamicPrompt
from engine.dynprompt import NodeNotFoundError

__all__ = ["DynamicPrompt", "ExecutionBlocker", "NodeNotFoundError"]


class ExecutionBlocker:
    """Return it as an output (or as an entry of a list output) to stop what consumes it."""

    blocks_execution = True

    def __init__(self, message: str | None) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"ExecutionBlocker({self.message!r})"
