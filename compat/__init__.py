"""ComfyUI compatibility layer: ComfyUI's module names, backed by Diffgraph's real objects.

Real ComfyUI packs do `import folder_paths`, `import comfy.utils`, `import comfy.model_management`,
`import comfy.samplers`, `import comfy.sd`, `import latent_preview`, `import nodes` and
`from server import PromptServer`. The implementations live here, one module per ComfyUI module;
the top-level names (`folder_paths.py`, `latent_preview.py`, `comfy/`) only re-export them, and
`server/compat.py` holds PromptServer (the server must not import torch, which these modules do).

| ComfyUI name              | here                          | backed by                                   |
|---------------------------|-------------------------------|---------------------------------------------|
| folder_paths              | compat.folder_paths           | engine.active_paths() (FolderPaths)         |
| comfy.utils               | compat.comfy_utils            | RunContext.progress, torch, nodes.sd pickle policy |
| comfy.model_management    | compat.model_management       | RunContext cancel token, nodes.sd.loader device |
| comfy.samplers            | compat.samplers               | nodes.sampling SAMPLER_NAMES/SCHEDULER_NAMES |
| comfy.sd                  | compat.sd                     | nodes.model_types, nodes.sd.loader           |
| latent_preview            | compat.latent_preview         | ProgressBar, nodes.sampling.preview          |
| nodes                     | nodes/__init__.py             | the built-in node classes, MAX_RESOLUTION   |
| server.PromptServer       | server/compat.py              | the server's route table and send_sync      |

The engine never imports this package; only packs do. custom_nodes/README.md is the pack contract.
Anything not listed in a module's `__all__` is not provided: a pack that needs more fails to
import with a clear AttributeError/ImportError, reported by the plugin loader.
"""
