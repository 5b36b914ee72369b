"""Diffgraph's engine: THE public API for nodes and plugins.

Import everything a node or a plugin needs from here: the `@node` declaration with `Input`/`Output`
and the type names, `RunContext`, the error types, the registry, folder paths, and the executor.
Standard library only: no torch, numpy, aiohttp or PIL in this package.
"""
from .context import CancelToken, RunContext, current_context
from .errors import (
                     EngineError,
                     ExecutionInterrupted,
                     NodeDefinitionError,
                     NodeExecutionError,
                     PluginLoadError,
                     WorkflowError,
                     WorkflowIssue,
)
from .folders import FolderPaths, UnsafePathError, activate_paths, active_paths, safe_join
from .registry import NodeRegistry
from .schema import (
                     ANY,
                     BOOLEAN,
                     CLIP,
                     COMBO,
                     CONDITIONING,
                     FLOAT,
                     GUIDER,
                     IMAGE,
                     INT,
                     LATENT,
                     MASK,
                     MODEL,
                     NOISE,
                     SAMPLER,
                     SIGMAS,
                     STRING,
                     VAE,
                     AnyType,
                     Input,
                     NodeSchema,
                     Output,
                     node,
                     types_match,
)

__all__ = [
    "ANY", "BOOLEAN", "CLIP", "COMBO", "CONDITIONING", "FLOAT", "GUIDER", "IMAGE", "INT", "LATENT", "MASK",
    "MODEL", "NOISE", "SAMPLER", "SIGMAS", "STRING", "VAE", "AnyType", "CancelToken", "EngineError",
    "ExecutionInterrupted", "FolderPaths", "Input", "NodeDefinitionError", "NodeExecutionError",
    "NodeRegistry", "NodeSchema", "Output", "PluginLoadError", "RunContext", "UnsafePathError",
    "WorkflowError", "WorkflowIssue", "activate_paths", "active_paths", "current_context", "node",
    "safe_join", "types_match",
]
