"""ComfyUI's `comfy_execution.graph` module name; the implementation is compat/execution_graph.py."""
from compat.execution_graph import *  # noqa: F401,F403
from compat.execution_graph import __all__  # noqa: F401
