"""Queue routes: POST/GET /prompt, /queue, /history, /interrupt, /free and our /api/jobs.

POST /prompt validates, commits the job, writes the reply, and only then lets the worker start it
(clients crash when events for a prompt arrive before its POST reply).
"""
from __future__ import annotations

import asyncio
import json
import math
import uuid
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from engine.events import now_ms
from engine.workflow import API_WORKFLOW_SCHEMA, validate_prompt

from .replies import http_error, json_error, query_int, read_json_object
from .state import HUB, PROMPT_SERVER, REGISTRY, STORE, WORKER, queue_status
from .store import FINISHED, INTERRUPTED, PENDING, RUNNING, DuplicatePromptId, Job

# ComfyUI strips these before history; we also keep anything that looks like a credential out of
# the store, /queue, /history and logs. They live in memory only, for the run.
SENSITIVE_EXTRA_DATA_KEYS = frozenset({"auth_token_comfy_org", "api_key_comfy_org"})
SECRET_HINTS = ("token", "api_key", "apikey", "secret", "password", "credential")
MAX_PROMPT_ID = 200


def split_secrets(extra_data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what may be stored and shown, what must not)."""
    def secret(key: str) -> bool:
        low = key.lower()
        return key in SENSITIVE_EXTRA_DATA_KEYS or any(h in low for h in SECRET_HINTS)
    public = {k: v for k, v in extra_data.items() if not secret(k)}
    return public, {k: v for k, v in extra_data.items() if secret(k)}


def broadcast_status(app: web.Application) -> None:
    app[HUB].send("status", queue_status(app))


# --- /prompt ---

async def get_prompt(request: web.Request) -> web.Response:
    return web.json_response({"exec_info": {"queue_remaining": request.app[STORE].remaining()}})


async def post_prompt(request: web.Request) -> web.StreamResponse:
    app = request.app
    body = await read_json_object(request)
    prompt_server = app.get(PROMPT_SERVER)
    if prompt_server is not None:
        body = prompt_server.trigger_on_prompt(body)
        if not isinstance(body, dict):
            return json_error(400, "invalid_prompt", "An on_prompt handler returned a non-object body")
    if "prompt" not in body:
        return json_error(400, "no_prompt", "No prompt provided", "the body needs a 'prompt' object")
    prompt = body["prompt"]
    fields = _prompt_fields(body)
    if isinstance(fields, web.Response):
        return fields
    prompt_id, targets, extra, front = fields
    requested_number = _requested_number(body.get("number"))
    if isinstance(requested_number, web.Response):
        return requested_number
    shape = shape_errors(prompt)
    if shape is not None:
        return web.json_response(shape, status=400)
    try:
        report = await asyncio.to_thread(validate_prompt, prompt, app[REGISTRY], targets)
    except Exception as exc:  # validate_prompt promises not to raise; a pack's INPUT_TYPES may anyway
        return json_error(400, "invalid_prompt", "Prompt could not be validated", f"{type(exc).__name__}: {exc}")
    if not report.ok:
        return web.json_response(report.response(), status=400)
    store, worker = app[STORE], app[WORKER]
    number = requested_number if requested_number is not None else store.next_number(front)
    public, secrets = split_secrets(extra)
    worker.hold(prompt_id)
    try:
        try:
            job = await asyncio.to_thread(store.add, prompt_id, number, prompt, public, list(report.outputs))
        except DuplicatePromptId:
            return _duplicate(store.get(prompt_id), prompt)
        if secrets:
            worker.secrets[prompt_id] = secrets
        response = web.json_response({"prompt_id": prompt_id, "number": job.number,
                                      "node_errors": report.node_errors})
        await response.prepare(request)
        await response.write_eof()
    finally:
        # Only now may the worker start it: no event for this prompt precedes its reply.
        asyncio.get_running_loop().call_soon(worker.release, prompt_id)
    broadcast_status(app)
    return response


_SHAPE = Draft202012Validator(API_WORKFLOW_SCHEMA)


def shape_errors(prompt: Any) -> dict[str, Any] | None:
    """The workflow's JSON shape checked with its JSON Schema: every violation, in ComfyUI's 400 shape."""
    errors = sorted(_SHAPE.iter_errors(prompt), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    node_errors: dict[str, Any] = {}
    for err in errors:
        path = [str(p) for p in err.absolute_path]
        node_id = path[0] if path else ""
        node = prompt.get(node_id) if isinstance(prompt, dict) else None
        entry = node_errors.setdefault(node_id, {"errors": [], "dependent_outputs": [],
                                                 "class_type": node.get("class_type") if isinstance(node, dict)
                                                 else None})
        where = "/".join(path) or "the workflow"
        entry["errors"].append({"type": "invalid_prompt", "message": "Invalid prompt",
                                "details": f"{where}: {err.message}", "extra_info": {}})
    first = next(iter(node_errors.values()))["errors"][0]
    return {"error": {**first, "details": first["details"]}, "node_errors": node_errors}


def _prompt_fields(body: dict[str, Any]) -> tuple[str, list[str] | None, dict[str, Any], bool] | web.Response:
    prompt_id = body.get("prompt_id")
    if prompt_id is None:
        prompt_id = str(uuid.uuid4())
    elif isinstance(prompt_id, bool) or not isinstance(prompt_id, (str, int)) or \
            not 0 < len(str(prompt_id)) <= MAX_PROMPT_ID or not str(prompt_id).isprintable():
        return json_error(400, "invalid_prompt", "Invalid prompt_id",
                          f"a non-empty printable string of at most {MAX_PROMPT_ID} characters")
    targets = body.get("partial_execution_targets")
    if targets is not None:
        if not isinstance(targets, list) or not all(isinstance(t, (str, int)) and not isinstance(t, bool)
                                                    for t in targets):
            return json_error(400, "invalid_prompt", "Invalid partial_execution_targets", "a list of node ids")
        targets = [str(t) for t in targets]
    extra = body.get("extra_data")
    extra = {} if extra is None else extra
    if not isinstance(extra, dict):
        return json_error(400, "invalid_prompt", "Invalid extra_data", "extra_data must be an object")
    client_id = body.get("client_id")
    if client_id is not None:
        if not isinstance(client_id, str):
            return json_error(400, "invalid_prompt", "Invalid client_id", "client_id must be a string")
        extra = {**extra, "client_id": client_id}
    return str(prompt_id), targets, extra, body.get("front") is True


def _requested_number(requested: Any) -> float | None | web.Response:
    """The body's `number`: absent/null -> None (next in line); a finite number, or a numeric string as
    ComfyUI's float() accepts it; anything else is a 400."""
    if requested is None:
        return None
    value: Any = requested
    if isinstance(requested, str):
        try:
            value = float(requested)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return json_error(400, "invalid_number", "Invalid number",
                          f"'number' must be a finite number, got {requested!r:.60}")
    return value


def _duplicate(existing: Job | None, prompt: Any) -> web.Response:
    """A retried POST with the same prompt_id and prompt is answered again, not queued twice."""
    if existing is not None and existing.prompt == prompt:
        return web.json_response({"prompt_id": existing.prompt_id, "number": existing.number, "node_errors": {}})
    return json_error(400, "invalid_prompt", "prompt_id already used",
                      "that prompt_id belongs to another prompt; omit it to get a fresh one")


# --- /queue ---

async def get_queue(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response({"queue_running": [j.queue_item() for j in store.running()],
                              "queue_pending": [j.queue_item() for j in store.pending()],
                              "workers": request.app[WORKER].placement()})  # ours: prompt id -> worker


async def post_queue(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    store, worker = request.app[STORE], request.app[WORKER]
    ids = _id_list(body)
    # SQLite writes with fsync run off the event loop: websockets and other requests keep flowing
    if body.get("clear") is True:
        await asyncio.to_thread(store.delete_pending, None)
    if ids:
        await asyncio.to_thread(store.delete_pending, ids)
        for pid in ids:
            worker.secrets.pop(pid, None)
    broadcast_status(request.app)
    return web.Response(status=200)


def _id_list(body: dict[str, Any]) -> list[str]:
    ids = body.get("delete")
    if ids is None:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        raise http_error(web.HTTPBadRequest, "invalid_request", "delete must be a list of prompt ids")
    return [str(i) for i in ids]


# --- /history ---

async def get_history(request: web.Request) -> web.Response:
    max_items = query_int(request, "max_items", None, minimum=0)
    offset = query_int(request, "offset", None, minimum=0)
    def read() -> str:  # reading and parsing (up to) the whole history happens off the loop
        jobs = request.app[STORE].history(max_items, offset)
        return json.dumps({j.prompt_id: j.history_entry() for j in jobs})

    return web.Response(text=await asyncio.to_thread(read), content_type="application/json")


async def get_history_item(request: web.Request) -> web.Response:
    job = request.app[STORE].get(request.match_info["prompt_id"])
    if job is None or not job.finished:
        return web.json_response({})  # clients poll: unknown and running both read as "not yet"
    return web.json_response({job.prompt_id: job.history_entry()})


async def post_history(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    store = request.app[STORE]
    ids = _id_list(body)
    if body.get("clear") is True:
        await asyncio.to_thread(store.delete_history, None)
    if ids:
        await asyncio.to_thread(store.delete_history, ids)
    return web.Response(status=200)


# --- interrupt, free ---

async def post_interrupt(request: web.Request) -> web.Response:
    body = await read_json_object(request, empty={})
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and not isinstance(prompt_id, str):
        return json_error(400, "invalid_request", "prompt_id must be a string")
    request.app[WORKER].interrupt(prompt_id)
    return web.Response(status=200)


async def post_free(request: web.Request) -> web.Response:
    body = await read_json_object(request, empty={})
    unload, free = body.get("unload_models", False), body.get("free_memory", False)
    if not isinstance(unload, bool) or not isinstance(free, bool):
        return json_error(400, "invalid_request", "unload_models and free_memory must be booleans")
    request.app[WORKER].request_free(unload, free)
    return web.Response(status=200)


# --- /api/jobs ---

async def get_jobs(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in (PENDING, RUNNING, *FINISHED):
        return json_error(400, "invalid_query", "Unknown status",
                          f"one of {', '.join((PENDING, RUNNING, *FINISHED))}")
    limit = query_int(request, "limit", 100, minimum=1)
    offset = query_int(request, "offset", 0, minimum=0)
    jobs, total = request.app[STORE].jobs(status, min(int(limit or 100), 1000), int(offset or 0))
    where = request.app[WORKER].placement()
    return web.json_response({"jobs": [{**j.summary(), "worker": where.get(j.prompt_id)} for j in jobs],
                              "total": total, "limit": limit, "offset": offset})


async def get_job(request: web.Request) -> web.Response:
    job = request.app[STORE].get(request.match_info["job_id"])
    if job is None:
        return json_error(404, "not_found", "No such job", request.match_info["job_id"][:80])
    return web.json_response({**job.summary(), "worker": request.app[WORKER].placement().get(job.prompt_id),
                              "prompt": job.prompt, "extra_data": job.extra_data})


async def post_job_cancel(request: web.Request) -> web.Response:
    """Cancel a pending job (it is finished as interrupted) or interrupt the running one."""
    app, pid = request.app, request.match_info["job_id"]
    store, worker = app[STORE], app[WORKER]
    for _ in range(3):  # the worker may claim it between our read and our write: look again
        job = await asyncio.to_thread(store.get, pid)
        if job is None:
            return json_error(404, "not_found", "No such job", pid[:80])
        if job.finished:
            return json_error(409, "conflict", f"Job already finished ({job.status})")
        if job.status == RUNNING and worker.interrupt(pid):
            return web.json_response({"id": pid, "cancelled": True, "was": RUNNING})
        message = ["execution_interrupted", {"prompt_id": pid, "node_id": None, "node_type": None,
                                             "executed": [], "timestamp": now_ms()}]
        if job.status == PENDING and await asyncio.to_thread(store.finish, pid, INTERRUPTED, {}, [message], {},
                                                             PENDING):
            worker.secrets.pop(pid, None)
            broadcast_status(app)
            return web.json_response({"id": pid, "cancelled": True, "was": PENDING})
        await asyncio.sleep(0.01)
    return json_error(409, "conflict", "Job changed state while cancelling; try again")
