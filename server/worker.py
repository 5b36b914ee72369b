"""The prompt worker: one thread that takes jobs from the store and runs them through the Executor.

Execution never touches the event loop; events reach websockets through the hub's thread-safe send.
Per job, in this order: history written, then the terminal event (`execution_success`/`_error`/
`_interrupted`), then `status`, then `executing {node: null}`, so a client that reacts to "done" finds
the history entry. A job held by `hold()` is not started until `release()` (after the POST reply).
"""
from __future__ import annotations

import io
import json
import logging
import struct
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.context import CancelToken
from engine.events import Event, ExecutionError

from .hub import Hub
from .store import ERROR, INTERRUPTED, SUCCESS, Job, JobStore

log = logging.getLogger(__name__)

TERMINAL = frozenset({"execution_success", "execution_error", "execution_interrupted"})
RECORDED = frozenset({"execution_start", "execution_cached"}) | TERMINAL
PREVIEW_IMAGE, PREVIEW_IMAGE_WITH_METADATA = 1, 4
IMAGE_FORMATS = {"JPEG": 1, "PNG": 2}


@dataclass
class Running:
    """The job in progress, as websocket handlers and /interrupt see it."""

    prompt_id: str
    client_id: str | None
    token: CancelToken
    node: str | None = None


@dataclass
class FreeRequest:
    unload_models: bool = False
    free_memory: bool = False


REDACTED = "[secret removed]"


def redact(data: Any, secrets: list[str]) -> Any:
    """`data` with every occurrence of a secret value replaced, in strings at any depth."""
    if not secrets:
        return data
    if isinstance(data, str):
        for value in secrets:
            data = data.replace(value, REDACTED)
        return data
    if isinstance(data, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact(v, secrets) for v in data]
    return data


def secret_values(secrets: dict[str, Any]) -> list[str]:
    """The strings to scrub from everything a job records or sends (short values would mangle text)."""
    values = {str(v) for v in secrets.values() if v is not None and len(str(v)) >= 4}
    return sorted(values, key=len, reverse=True)


class JobSink:
    """The executor's EventSink for one job: forwards to the client and records history messages.
    Every payload is scrubbed of the job's secret values before it is recorded or sent."""

    def __init__(self, worker: Worker, job: Job, running: Running) -> None:
        self.worker, self.job, self.running = worker, job, running
        self.client_id = job.extra_data.get("client_id")
        self.messages: list[list[Any]] = []
        self.terminal: list[tuple[str, Any]] = []
        self.secrets = secret_values(worker.secrets.get(job.prompt_id, {}))

    def emit(self, event: Event) -> None:
        kind = event.type
        if kind == "preview":
            self.worker.send_preview(event, self.client_id)
            return
        if kind == "executing":
            node = getattr(event, "node", None)
            if node is None:
                return  # the worker sends the final executing{node: null} itself, after history
            self.running.node = node
        data = redact(_payload(event), self.secrets)
        if kind in RECORDED:
            self.messages.append([kind, data])
        if kind in TERMINAL:
            self.terminal.append((kind, data))  # held back until history is written
            return
        if hasattr(event, "sid") and hasattr(event, "payload"):  # a pack's send_sync during the run
            self.worker.hub.send_threadsafe(kind, data, event.sid)
        elif self.client_id:
            self.worker.hub.send_threadsafe(kind, data, self.client_id)


def _payload(event: Event) -> Any:
    data = event.data()
    return json.loads(json.dumps(data, default=repr)) if isinstance(data, dict) else data


class Worker:
    """Owns the executor thread. Thread-safe controls: hold/release/notify, interrupt, cancel, free."""

    def __init__(self, store: JobStore, executor: Any, hub: Hub, previews: bool = False,
                 secrets: dict[str, dict[str, Any]] | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.store, self.executor, self.hub = store, executor, hub
        self.previews = previews
        self.secrets = secrets if secrets is not None else {}
        self.on_change = on_change or (lambda: None)
        self._held: dict[str, int] = {}  # prompt id -> holds (a duplicate POST may hold an id twice)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._free = FreeRequest()
        self._thread: threading.Thread | None = None
        self.current: Running | None = None
        self.idle = threading.Event()
        self.idle.set()

    # --- lifecycle ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="diffgraph-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        running = self.current
        if running is not None:
            running.token.cancel()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- controls (any thread) ---

    def hold(self, prompt_id: str) -> None:
        with self._lock:
            self._held[prompt_id] = self._held.get(prompt_id, 0) + 1

    def release(self, prompt_id: str) -> None:
        with self._lock:
            count = self._held.pop(prompt_id, 0) - 1
            if count > 0:
                self._held[prompt_id] = count
        self._wake.set()

    def notify(self) -> None:
        self._wake.set()

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Cancel the running job (only if it is `prompt_id`, when given)."""
        running = self.current
        if running is None or (prompt_id is not None and running.prompt_id != prompt_id):
            return False
        running.token.cancel()
        return True

    def request_free(self, unload_models: bool, free_memory: bool) -> None:
        with self._lock:
            self._free.unload_models |= unload_models
            self._free.free_memory |= free_memory
        self._wake.set()

    # --- the thread ---

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before looking: a release() from now on ends the wait below
            self._apply_free()
            try:
                job = self._claim()
            except Exception:  # the database is gone (shutdown) or locked: retry, never die
                log.exception("could not take the next job")
                job = None
            if job is None:
                self.idle.set()
                self._wake.wait(timeout=1.0)
                continue
            self.idle.clear()
            try:
                self.run_job(job)
            except Exception:
                log.exception("worker failed around prompt %s", job.prompt_id)

    def _claim(self) -> Job | None:
        """The next job that is not held. Optimistic: a hold() that raced the claim undoes it."""
        with self._lock:
            held = set(self._held)
        job = self.store.claim_next(held)
        if job is not None:
            with self._lock:
                raced = job.prompt_id in self._held
            if raced:  # held after our snapshot: its POST reply is not out yet
                self.store.requeue(job.prompt_id)
                return None
        return job

    def _apply_free(self) -> None:
        with self._lock:
            request, self._free = self._free, FreeRequest()
        if request.unload_models or request.free_memory:
            self.executor.free()
            log.info("freed cached outputs and models (/free)")

    def run_job(self, job: Job) -> None:
        running = Running(job.prompt_id, job.extra_data.get("client_id"), CancelToken())
        self.current = running
        self.on_change()
        sink = JobSink(self, job, running)
        started = time.perf_counter()
        extra = {**job.extra_data, **self.secrets.get(job.prompt_id, {})}
        try:
            result = self.execute(job, sink, running, extra)
            status, outputs = _status_of(result, sink, job), _history_outputs(result.outputs)
        except Exception as exc:  # a bug in the engine: the job fails, the worker carries on
            log.exception("prompt %s crashed the executor", job.prompt_id)
            status, outputs = ERROR, {}
            sink.emit(_crash_event(job.prompt_id, exc))
        if status == INTERRUPTED and self._stop.is_set():
            self.store.requeue(job.prompt_id)  # stopped by shutdown, not by a user: run it after restart
            self.current = None
            return
        meta = {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid}
                for nid in outputs}
        if not self._record_end(job, status, outputs, sink, meta):
            status = ERROR
        self.secrets.pop(job.prompt_id, None)
        self.current = None
        for kind, data in sink.terminal:  # after history: clients that react to "done" find the entry
            # execution_interrupted goes to everyone when the prompt has no client, as in ComfyUI
            if running.client_id or kind == "execution_interrupted":
                self.hub.send_threadsafe(kind, data, running.client_id)
        self.on_change()
        if running.client_id:
            self.hub.send_threadsafe("executing", {"node": None, "display_node": None,
                                                   "prompt_id": job.prompt_id}, running.client_id)
        log.info("Prompt %s executed in %.2f seconds (%s)", job.prompt_id, time.perf_counter() - started, status)

    def execute(self, job: Job, sink: JobSink, running: Running, extra: dict[str, Any]) -> Any:
        """Where the prompt runs (the seam, see server/backends.py): here, in this thread. Returns a
        result with `status`, `outputs` and `validation` like engine.executor.RunResult."""
        return self.executor.run(job.prompt, run_id=job.prompt_id, sink=sink, targets=job.targets or None,
                                 extra_data=extra, cancel=running.token)

    def placement(self) -> dict[str, str]:
        """prompt id -> the worker running it (/queue, /api/jobs)."""
        running = self.current
        return {running.prompt_id: "local"} if running is not None else {}

    def describe(self) -> list[dict[str, Any]]:
        """The workers and their devices (/system_stats)."""
        running = self.current
        device = (getattr(self.executor, "services", None) or {}).get("device") or "auto"
        return [{"name": "local", "kind": "thread", "device": device,
                 "running": running.prompt_id if running is not None else None}]

    def _record_end(self, job: Job, status: str, outputs: dict[str, Any], sink: JobSink,
                    meta: dict[str, Any]) -> bool:
        """Write the job's end to history. If that fails (a result that cannot be stored, a disk error),
        the job ends as failed with the reason instead of staying "running" forever; True if recorded as is."""
        try:
            self.store.finish(job.prompt_id, status, outputs, sink.messages, meta)
            return True
        except Exception as exc:
            log.exception("could not record the end of prompt %s", job.prompt_id)
            reason = f"the result of this prompt could not be recorded: {type(exc).__name__}: {exc}"
        error = redact(_payload(ExecutionError(job.prompt_id, exception_message=reason,
                                               exception_type="HistoryWriteError", traceback=[])), sink.secrets)
        messages = [m for m in sink.messages if m[0] != "execution_success"] + [["execution_error", error]]
        sink.terminal = [t for t in sink.terminal if t[0] != "execution_success"] + [("execution_error", error)]
        for attempt in range(3):
            try:
                self.store.finish(job.prompt_id, ERROR, {}, messages, {})
                break
            except Exception:
                log.exception("could not record prompt %s as failed either (attempt %d)", job.prompt_id, attempt + 1)
                time.sleep(0.05 * (attempt + 1))
        return False

    # --- previews ---

    def send_preview(self, event: Event, client_id: str | None) -> None:
        """Binary preview frames, only when previews are on and someone submitted the prompt."""
        if not self.previews or not client_id or client_id not in self.hub.clients:
            return
        encoded = encode_preview(getattr(event, "image", None))
        if encoded is None:
            return
        fmt, body = encoded
        client = self.hub.clients.get(client_id)
        if client is not None and client.features.get("supports_preview_metadata"):
            node = getattr(event, "node", None)
            meta = json.dumps({"node_id": node, "prompt_id": event.prompt_id, "display_node_id": node,
                               "parent_node_id": None, "real_node_id": node,
                               "image_type": "image/jpeg" if fmt == 1 else "image/png"}).encode()
            frame = struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + body
        else:
            frame = struct.pack(">II", PREVIEW_IMAGE, fmt) + body
        self.hub.send_bytes_threadsafe(frame, client_id)


def encode_preview(image: Any) -> tuple[int, bytes] | None:
    """`("JPEG"|"PNG", image, max_size)` as ComfyUI's previewers make, or ready bytes (JPEG)."""
    if isinstance(image, (bytes, bytearray)):
        return IMAGE_FORMATS["JPEG"], bytes(image)
    if not isinstance(image, (tuple, list)) or len(image) < 2:
        return None
    kind = str(image[0]).upper()
    picture, max_size = image[1], (image[2] if len(image) > 2 else 512)
    try:
        picture = picture.copy()
        picture.thumbnail((int(max_size), int(max_size)))
        buf = io.BytesIO()
        picture.save(buf, format="PNG" if kind == "PNG" else "JPEG", quality=95)
    except Exception:  # a pack's odd preview object must not fail the run
        log.debug("preview could not be encoded", exc_info=True)
        return None
    return IMAGE_FORMATS.get(kind, 1), buf.getvalue()


def _status_of(result: Any, sink: JobSink, job: Job) -> str:
    if result.status == "success":
        return SUCCESS
    if result.status == "interrupted":
        return INTERRUPTED
    if result.status == "invalid":  # valid when queued; a file or pack changed before it ran
        report = result.validation
        text = report.text() if report is not None else "the workflow is no longer valid"
        sink.emit(_crash_event(job.prompt_id, ValueError(text), exception_type="ValidationError"))
    return ERROR


def _history_outputs(outputs: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """ComfyUI clients require every output value to be a list (`{"text": ["..."]}`)."""
    clean: dict[str, dict[str, list[Any]]] = {}
    for nid, ui in (outputs or {}).items():
        if not isinstance(ui, dict):
            continue
        clean[str(nid)] = {str(k): list(v) if isinstance(v, (list, tuple)) else [v] for k, v in ui.items()}
    return json.loads(json.dumps(clean, default=repr))


def _crash_event(prompt_id: str, exc: BaseException, exception_type: str | None = None) -> Event:
    return ExecutionError(prompt_id, exception_message=str(exc), exception_type=exception_type or type(exc).__name__,
                          traceback=traceback.format_exception(exc) if exception_type is None else [])
