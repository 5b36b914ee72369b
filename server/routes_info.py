"""Read-only information routes and the converter: /object_info, /system_stats, /models, /embeddings,
/extensions, /features, POST /workflow/convert and /openapi.json.

Anything that may scan folders (object_info's dynamic combos) runs in a thread, off the event loop.
"""
from __future__ import annotations

import asyncio
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.convert import ConversionError, convert_workflow, registry_node_info

from .openapi import openapi_document
from .replies import json_error, read_json
from .routes_files import extension_urls
from .state import CONFIG, HUB, PACKS, PATHS, REGISTRY, ROUTE_TABLE, WORKER

SERVER_FEATURES = {"supports_preview_metadata": True}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


async def get_object_info(request: web.Request) -> web.Response:
    info = await asyncio.to_thread(request.app[REGISTRY].object_info)
    return web.json_response(info)


async def get_object_info_node(request: web.Request) -> web.Response:
    registry, name = request.app[REGISTRY], request.match_info["node_class"]
    if name not in registry:
        return web.json_response({})
    try:
        info = await asyncio.to_thread(lambda: registry.schema(name).object_info())
    except Exception:  # a pack's INPUT_TYPES raised: ComfyUI leaves such nodes out
        return web.json_response({})
    return web.json_response({name: info})


async def get_system_stats(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    total, free = _memory()
    system = {"os": os.name, "ram_total": total, "ram_free": free,
              "comfyui_version": _version("diffgraph") or "0.1.0", "diffgraph_version": _version("diffgraph"),
              "python_version": sys.version, "pytorch_version": _version("torch"),
              "embedded_python": False, "argv": cfg.display_argv(), "platform": platform.platform()}
    return web.json_response({"system": system, "devices": _devices(cfg.cpu, total, free),
                              "workers": request.app[WORKER].describe()})


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_PHYS_PAGES") * page, os.sysconf("SC_AVPHYS_PAGES") * page
    except (ValueError, OSError, AttributeError):
        return 0, 0


def _devices(cpu_only: bool, ram_total: int, ram_free: int) -> list[dict[str, Any]]:
    # The server never imports torch; if the node packs already loaded it, report its GPUs.
    torch = sys.modules.get("torch")
    devices = []
    if torch is not None and not cpu_only:
        try:
            for i in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(i)
                devices.append({"name": torch.cuda.get_device_name(i), "type": "cuda", "index": i,
                                "vram_total": total, "vram_free": free,
                                "torch_vram_total": torch.cuda.memory_reserved(i),
                                "torch_vram_free": torch.cuda.memory_reserved(i) - torch.cuda.memory_allocated(i)})
        except Exception:  # no driver, or the device went away: report the CPU only
            devices = []
    if not devices:
        devices.append({"name": "cpu", "type": "cpu", "index": None, "vram_total": ram_total,
                        "vram_free": ram_free, "torch_vram_total": 0, "torch_vram_free": 0})
    return devices


async def get_models(request: web.Request) -> web.Response:
    return web.json_response(request.app[PATHS].folder_names())


async def get_models_folder(request: web.Request) -> web.Response:
    paths, folder = request.app[PATHS], request.match_info["folder"]
    try:
        names = await asyncio.to_thread(paths.get_filename_list, folder)
    except KeyError:
        return json_error(404, "not_found", f"Unknown model folder {folder[:80]!r}")
    return web.json_response(names)


async def get_embeddings(request: web.Request) -> web.Response:
    names = await asyncio.to_thread(request.app[PATHS].get_filename_list, "embeddings")
    return web.json_response([os.path.splitext(n)[0] for n in names])


async def get_extensions(request: web.Request) -> web.Response:
    return web.json_response(await asyncio.to_thread(extension_urls, request.app[PACKS]))


async def get_features(request: web.Request) -> web.Response:
    return web.json_response(server_features(request.app))


def server_features(app: web.Application) -> dict[str, Any]:
    cfg = app[CONFIG]
    return {**SERVER_FEATURES, "max_upload_size": cfg.max_upload_bytes, "previews": cfg.previews_enabled,
            "persistent_queue": True, "jobs_api": True, "workflow_convert": True,
            "example_workflows": bool(cfg.workflows_dir and cfg.workflows_dir.is_dir()),
            "websocket_clients": len(app[HUB].clients)}


async def post_workflow_convert(request: web.Request) -> web.Response:
    """Body: a UI-format workflow, or `{"workflow": ...}`. Reply: `{"prompt": api, "warnings": [...]}`."""
    body = await read_json(request)
    workflow = body.get("workflow") if isinstance(body, dict) and "nodes" not in body else body
    try:
        conv = await asyncio.to_thread(convert_workflow, workflow, registry_node_info(request.app[REGISTRY]))
    except ConversionError as exc:
        return json_error(400, "conversion_failed", "Workflow cannot be converted", "; ".join(exc.problems)[:4000])
    return web.json_response({"prompt": conv.prompt, "warnings": conv.warnings})


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[ROUTE_TABLE], _version("diffgraph") or "0.1.0"))


def web_root_default() -> Path:
    return Path(__file__).resolve().parents[1] / "web"
