"""ComfyUI's `comfy_execution.graph_utils` module name; some packs import ExecutionBlocker from here."""
from compat.execution_graph import ExecutionBlocker  # noqa: F401
from engine.values import is_link  # noqa: F401

__all__ = ["ExecutionBlocker", "is_link"]
