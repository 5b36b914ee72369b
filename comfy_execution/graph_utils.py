"""ComfyUI's `comfy_execution.graph_utils` module name; the implementation is compat/execution_graph_utils.py."""
from compat.execution_graph_utils import *  # noqa: F401,F403
from compat.execution_graph_utils import __all__  # noqa: F401
