"""`create_app(config)`: the aiohttp application, its one route table, and its start/stop hooks.

Every route below is served at its ComfyUI path and again under /api/. The app's shared objects
(config, registry, job store, hub, worker) live in typed AppKeys (server/state.py), never in
globals; node packs are loaded through engine.plugins, never imported here.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import replace
from typing import Any

from aiohttp import web

from engine import NodeRegistry, activate_paths
from engine.executor import Executor
from engine.plugins import LoadReport, load_builtin, load_packs

from . import routes_files as files
from . import routes_info as info
from . import routes_packs as packs_routes
from . import routes_queue as queue
from . import routes_workflows as workflows
from .backends import make_backend
from .config import ServerConfig
from .hub import Hub
from .openapi import Route
from .routes_ws import websocket
from .security import error_middleware, guard_middleware, on_response_prepare
from .state import (
    CONFIG,
    EXECUTOR,
    HUB,
    PACKS,
    PATHS,
    PROMPT_SERVER,
    REGISTRY,
    ROUTE_TABLE,
    STORE,
    WORKER,
    queue_status,
)
from .store import JobStore, StoreLock

STORE_LOCK = web.AppKey("store_lock", StoreLock)
log = logging.getLogger(__name__)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/prompt", queue.get_prompt, "Queue length: {exec_info: {queue_remaining}}"),
    Route("POST", "/prompt", queue.post_prompt, "Validate and queue a prompt",
          body="{prompt, client_id?, prompt_id?, number?, front?, partial_execution_targets?, extra_data?}"),
    Route("GET", "/queue", queue.get_queue, "Running and pending items [number, prompt_id, prompt, extra_data, "
                                            "outputs]"),
    Route("POST", "/queue", queue.post_queue, "Remove pending items", body="{clear?: true, delete?: [prompt_id]}", empty_reply=True),
    Route("GET", "/history", queue.get_history, "Finished prompts, oldest first", query=("max_items", "offset")),
    Route("GET", "/history/{prompt_id}", queue.get_history_item, "One finished prompt; {} while unknown or running"),
    Route("POST", "/history", queue.post_history, "Remove history entries", body="{clear?: true, delete?: [id]}", empty_reply=True),
    Route("POST", "/interrupt", queue.post_interrupt, "Interrupt the running prompt", body="{prompt_id?}", empty_reply=True),
    Route("POST", "/free", queue.post_free, "Drop cached outputs/models after the current prompt",
          body="{unload_models?: bool, free_memory?: bool}", empty_reply=True),
    Route("GET", "/jobs", queue.get_jobs, "Jobs, newest first", query=("status", "limit", "offset"), tag="jobs"),
    Route("GET", "/jobs/{job_id}", queue.get_job, "One job: status, timestamps, outputs, prompt", tag="jobs"),
    Route("POST", "/jobs/{job_id}/cancel", queue.post_job_cancel, "Cancel a pending or running job", tag="jobs"),
    Route("GET", "/object_info", info.get_object_info, "Every node's schema"),
    Route("GET", "/object_info/{node_class}", info.get_object_info_node, "One node's schema; {} when unknown"),
    Route("GET", "/system_stats", info.get_system_stats, "OS, memory, versions and devices"),
    Route("GET", "/models", info.get_models, "Model folder names"),
    Route("GET", "/models/{folder}", info.get_models_folder, "Files in one model folder"),
    Route("GET", "/embeddings", info.get_embeddings, "Embedding names"),
    Route("GET", "/extensions", info.get_extensions, "Web extension scripts of node packs"),
    Route("GET", "/features", info.get_features, "Server feature flags"),
    Route("GET", "/custom_nodes", packs_routes.get_custom_nodes,
          "Node packs found at start-up (loaded/failed/disabled) and whether a restart is needed", tag="packs"),
    Route("GET", "/workflows", workflows.get_workflows, "Example workflow file names (workflows/)"),
    Route("GET", "/workflows/{name}", workflows.get_workflow, "One example workflow (JSON)"),
    Route("POST", "/workflow/convert", info.post_workflow_convert, "UI-format workflow -> API-format prompt",
          body="a UI workflow, or {workflow}"),
    Route("GET", "/openapi.json", info.get_openapi, "This document"),
    Route("GET", "/view", files.get_view, "A file from output/input/temp",
          query=("filename", "subfolder", "type", "preview", "channel"), reply="*/*"),
    Route("POST", "/upload/image", files.post_upload_image, "Upload an image",
          body="multipart: image, type?, subfolder?, overwrite?"),
    Route("POST", "/upload/mask", files.post_upload_mask, "Upload a mask into an image's alpha",
          body="multipart: image, original_ref, type?, subfolder?, overwrite?"),
    Route("GET", "/ws", websocket, "Websocket event stream", query=("clientId",), reply="*/*"),
    Route("GET", "/", files.get_index, "The web editor", api_alias=False, tag="web"),
    Route("GET", "/vendor/{path:.*}", files.get_vendor, "Editor dependencies", api_alias=False, tag="web"),
    Route("GET", "/extensions/{pack}/{path:.*}", files.get_extension_file, "A node pack's web file",
          api_alias=False, tag="web"),
    Route("GET", "/{path:.*}", files.get_static, "Editor files", api_alias=False, tag="web"),  # last: catch-all
)


def load_nodes(config: ServerConfig, custom_node_dirs: list[Any]) -> tuple[NodeRegistry, LoadReport]:
    """The built-in pack and custom_nodes packs, through engine.plugins (failures are reported)."""
    registry = NodeRegistry()
    report = LoadReport()
    if config.load_builtin_nodes:
        builtin = load_builtin(registry)
        if builtin.state != "loaded":
            log.error("built-in nodes failed to load: %s", builtin.error)
        report.packs.append(builtin)
    packs = load_packs(custom_node_dirs, registry, disable_all=config.disable_all_custom_nodes,
                       whitelist=config.whitelist_custom_nodes)
    report.packs.extend(packs.packs)
    return registry, report


def create_app(config: ServerConfig, registry: NodeRegistry | None = None, *, packs: LoadReport | None = None,
               prompt_server: Any = None, executor: Any = None) -> web.Application:
    """Build the server. Without `registry`, node packs are loaded from the config's folders.

    `prompt_server` is the `server.compat.PromptServer` that ComfyUI packs use; its routes are mounted
    and it is bound to this app's websockets. `executor` defaults to an engine Executor.
    """
    config = config.with_token()
    paths = config.folder_paths()
    paths.ensure_dirs()
    _wipe_temp(paths.temp)
    activate_paths(paths)  # nodes read folders through engine.active_paths()
    if registry is None:
        registry, packs = load_nodes(config, paths.custom_nodes)
    if config.web_root is None:
        config = replace(config, web_root=info.web_root_default())
    if config.workflows_dir is None:
        config = replace(config, workflows_dir=info.web_root_default().parent / "workflows")
    app = web.Application(client_max_size=config.max_upload_bytes,
                          middlewares=[error_middleware, guard_middleware(config)])
    store_lock = StoreLock(paths.user / "queue.sqlite3")  # before recovery: never recover a live server's jobs
    try:
        store = JobStore(paths.user / "queue.sqlite3", config.history_size)
    except BaseException:
        store_lock.release()
        raise
    app[STORE_LOCK] = store_lock
    requeued, failed = store.recover()
    if requeued or failed:
        log.warning("recovered after a crash: %d prompt(s) re-queued, %d failed for good", len(requeued), len(failed))
    hub = Hub()
    services = {"preview_method": config.preview_method, "device": "cpu" if config.cpu else None}
    executor = executor or Executor(registry, cache_policy=config.cache, cache_budget_bytes=config.cache_budget_bytes,
                                    services=services)
    worker = make_backend(config, store, executor, hub, registry,
                          on_change=lambda: hub.send_threadsafe("status", queue_status(app)))
    for key, value in ((CONFIG, config), (PATHS, paths), (REGISTRY, registry), (STORE, store), (HUB, hub),
                       (WORKER, worker), (EXECUTOR, executor), (PACKS, packs), (PROMPT_SERVER, prompt_server),
                       (ROUTE_TABLE, ROUTES)):
        app[key] = value
    _add_routes(app, ROUTES, getattr(prompt_server, "routes", None))
    app.on_response_prepare.append(on_response_prepare)
    app.on_startup.append(_start)
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_cleanup)
    return app


def _add_routes(app: web.Application, routes: tuple[Route, ...], pack_routes: Any) -> None:
    """Ours at / and /api; packs' (PromptServer.routes) before the static catch-all, also at both."""
    table = [r for r in routes if r.path != "/{path:.*}"]
    for route in table:
        app.router.add_route(route.method, route.path, route.handler)
    for route in table:
        if route.api_alias:
            app.router.add_route(route.method, "/api" + route.path, route.handler)
    for definition in pack_routes or ():
        if isinstance(definition, web.RouteDef):
            for prefix in ("", "/api"):
                try:
                    app.router.add_route(definition.method, prefix + definition.path, definition.handler,
                                         **definition.kwargs)
                except (RuntimeError, ValueError) as exc:  # a pack's route clashing with ours is refused
                    log.warning("node pack route %s %s refused: %s", definition.method, definition.path, exc)
        else:
            definition.register(app.router)
    for route in routes:
        if route.path == "/{path:.*}":
            app.router.add_route(route.method, route.path, route.handler)


def _wipe_temp(temp: Any) -> None:
    # As ComfyUI: temp holds previews of the last session only. It is always <something>/temp.
    if temp.is_dir() and temp.name == "temp":
        for entry in temp.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


async def _start(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    app[HUB].attach(loop)
    prompt_server = app[PROMPT_SERVER]
    if prompt_server is not None:
        prompt_server.bind(app, app[HUB].send_threadsafe, loop)
    app[WORKER].start()


async def _shutdown(app: web.Application) -> None:
    await app[HUB].close_all()


async def _cleanup(app: web.Application) -> None:
    await asyncio.to_thread(app[WORKER].stop)
    prompt_server = app[PROMPT_SERVER]
    if prompt_server is not None and getattr(prompt_server, "app", None) is app:
        prompt_server.unbind()
    app[STORE].close()
    app[STORE_LOCK].release()
