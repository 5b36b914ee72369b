"""Diffgraph's HTTP and websocket server (aiohttp).

`PromptServer` is re-exported for ComfyUI packs (`from server import PromptServer`); see server/compat.py.
"""
from .compat import PromptServer  # noqa: F401  (ComfyUI packs' name; the server itself never uses it)
