"""Where prompts run: the one seam between the server's queue and the code that executes a prompt.

The server keeps the queue, history, the exactly-once rule and the websocket; a backend only takes
claimed jobs and runs them. Two backends: the in-process worker thread (server/worker.py, the default)
and Ray actors (server/ray_backend.py, `--ray`), which is imported only when asked for, so a server
without the flag never imports Ray.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from engine import NodeRegistry

from .config import ServerConfig
from .hub import Hub
from .store import JobStore
from .worker import Running, Worker


class Backend(Protocol):
    """What routes and the app call on `app[WORKER]`; server.worker.Worker is the reference."""

    secrets: dict[str, dict[str, Any]]
    current: Running | None

    def start(self) -> None: ...
    def stop(self, timeout: float = 10.0) -> None: ...
    def hold(self, prompt_id: str) -> None: ...
    def release(self, prompt_id: str) -> None: ...
    def notify(self) -> None: ...
    def interrupt(self, prompt_id: str | None = None) -> bool: ...
    def request_free(self, unload_models: bool, free_memory: bool) -> None: ...
    def placement(self) -> dict[str, str]: ...
    def describe(self) -> list[dict[str, Any]]: ...


def make_backend(config: ServerConfig, store: JobStore, executor: Any, hub: Hub, registry: NodeRegistry,
                 on_change: Callable[[], None]) -> Worker:
    """The in-process worker, or the Ray backend when `config.ray` is set (Ray imported only then)."""
    if config.ray is None:
        return Worker(store, executor, hub, previews=config.previews_enabled, on_change=on_change)
    if config.ray_workers is not None and config.ray_workers < 1 or config.ray_attempts < 1:
        raise ValueError("--ray-workers and --ray-attempts must be at least 1")
    try:
        from .ray_backend import RayBackend  # the optional extra [ray]
    except ImportError as exc:
        raise ValueError(f"--ray needs Ray (pip install 'diffgraph[ray]'): {exc}") from None
    return RayBackend(store, executor, hub, registry, config, on_change=on_change)
