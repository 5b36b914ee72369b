"""The Ray backend (`--ray`): prompts run on Ray actors, one per GPU (or CPU slot), models kept resident.

The server stays the front door: the SQLite queue, history, exactly-once rule and websocket are the
in-process worker's (this class extends server.worker.Worker and replaces only `execute`, the seam).
A dispatcher thread claims the head of the queue whenever a worker is idle and gives it to the idle
worker that already holds most of the prompt's cache keys (affinity). One thread per worker streams
the actor's events back in order (a Ray streaming generator) into the job's sink, so clients see
exactly what the in-process worker would send. A worker that dies mid-prompt is replaced; its prompt
goes back to the queue (counted as an attempt) and fails with a clear error after `ray_attempts`.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray
from ray import exceptions as ray_errors

from engine import NodeRegistry

from .config import ServerConfig
from .hub import Hub
from .ray_actor import PromptActor, prompt_keys
from .store import ERROR, Job, JobStore
from .worker import JobSink, Running, Worker

log = logging.getLogger(__name__)
LOST = (ray_errors.ActorDiedError, ray_errors.ActorUnavailableError, ray_errors.WorkerCrashedError,
        ray_errors.NodeDiedError, ray_errors.ObjectLostError, ray_errors.OwnerDiedError,
        ray_errors.LocalRayletDiedError)
ACTOR_READY_S = 300.0


class WorkerLost(BaseException):  # noqa: N818 - a BaseException so run_job's crash handler lets it through
    """The actor running a prompt died (process killed, node lost)."""


@dataclass
class RemoteResult:
    status: str
    outputs: dict[str, Any]
    validation: Any = None


@dataclass
class _Text:
    value: str

    def text(self) -> str:
        return self.value


@dataclass
class Slot:
    """One worker as the server sees it: its actor, the job it runs, the cache keys it holds."""

    index: int
    name: str
    actor: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    job: Job | None = None
    running: Running | None = None
    held: set[str] = field(default_factory=set)
    inbox: queue.Queue = field(default_factory=queue.Queue)
    thread: threading.Thread | None = None
    runs: int = 0


class RayBackend(Worker):
    """The Worker contract (hold/release, interrupt, free, history, event order) over N Ray actors."""

    def __init__(self, store: JobStore, executor: Any, hub: Hub, registry: NodeRegistry, config: ServerConfig,
                 on_change: Any = None) -> None:
        self._slots: list[Slot] = []
        self._by_thread: dict[int, Slot] = {}
        super().__init__(store, executor, hub, previews=config.previews_enabled, on_change=on_change)
        self.config, self.registry = config, registry
        self.output_root, self.temp_root = config.folder_paths().output, config.folder_paths().temp
        self.retries: dict[str, list[list[Any]]] = {}
        self._owns_ray = False
        self._started = threading.Event()
        self.boot_error: str | None = None

    # `current` is per worker thread: run_job() sets its own slot's; other threads see any running job
    @property  # type: ignore[override]
    def current(self) -> Running | None:
        slot = self._by_thread.get(threading.get_ident())
        if slot is not None:
            return slot.running
        return next((s.running for s in self._slots if s.running is not None), None)

    @current.setter
    def current(self, value: Running | None) -> None:
        slot = self._by_thread.get(threading.get_ident())
        if slot is not None:
            slot.running = value

    # --- lifecycle ---

    def start(self) -> None:
        threading.Thread(target=self._boot, name="diffgraph-ray-boot", daemon=True).start()

    def _boot(self) -> None:
        try:
            self._connect()
            count = self.config.ray_workers or max(1, int(ray.cluster_resources().get("GPU", 0)))
            self._slots = [Slot(i, f"ray-{i}") for i in range(count)]
            for slot in self._slots:
                self._spawn(slot)
            for slot in self._slots:
                self._await_ready(slot)
                slot.thread = threading.Thread(target=self._serve, args=(slot,), name=f"diffgraph-{slot.name}",
                                               daemon=True)
                slot.thread.start()
        except Exception as exc:
            self.boot_error = f"{type(exc).__name__}: {exc}"
            log.exception("the Ray backend could not start; prompts stay queued until a restart")
            return
        finally:
            self._started.set()
        log.info("Ray backend: %d worker(s): %s", len(self._slots),
                 ", ".join(f"{s.name} pid {s.info.get('pid')} on {s.info.get('device')}" for s in self._slots))
        super().start()  # the dispatcher: Worker's thread running our _loop

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        address = None if self.config.ray == "local" else self.config.ray
        env = {"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}} if address is None else None
        # No dashboard and no Jobs API from our side: the cluster is a trust boundary (server/README.md).
        ray.init(address=address, include_dashboard=False, runtime_env=env, logging_level=logging.WARNING,
                 configure_logging=False)
        self._owns_ray = True

    def _spawn(self, slot: Slot) -> None:
        gpus = ray.cluster_resources().get("GPU", 0) > 0 and not self.config.cpu
        options = {"num_gpus": 1, "num_cpus": 0} if gpus else {"num_cpus": 1}
        actor_cls = ray.remote(PromptActor)
        slot.actor = actor_cls.options(max_concurrency=4, max_restarts=0, **options).remote(self.config, slot.name)
        slot.ready, slot.held = False, set()

    def _await_ready(self, slot: Slot) -> None:
        slot.info = ray.get(slot.actor.info.remote(), timeout=ACTOR_READY_S)
        slot.ready = True

    def wait_ready(self, timeout: float = ACTOR_READY_S) -> bool:
        """Tests and benchmarks: True once every worker answered."""
        return self._started.wait(timeout) and all(s.ready for s in self._slots)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for slot in self._slots:
            if slot.running is not None:
                self._cancel_remote(slot, slot.running.prompt_id)
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for slot in self._slots:
            slot.inbox.put(None)
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout)
        closing = [slot.actor.close.remote() for slot in self._slots if slot.actor is not None]
        try:
            ray.wait(closing, num_returns=len(closing), timeout=5)
        except Exception:
            log.debug("workers did not all close", exc_info=True)
        for slot in self._slots:
            if slot.actor is not None:
                ray.kill(slot.actor, no_restart=True)
        if self._owns_ray:
            ray.shutdown()

    # --- controls ---

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Cancel the running prompt `prompt_id` on its worker (every running one when None)."""
        hit = False
        for slot in self._slots:
            running, job = slot.running, slot.job
            if running is not None and (prompt_id is None or running.prompt_id == prompt_id):
                running.token.cancel()
                self._cancel_remote(slot, running.prompt_id)
                hit = True
            elif running is None and job is not None and job.prompt_id == prompt_id:
                self._cancel_remote(slot, prompt_id)  # handed over, not started: the actor keeps it
                hit = True
        return hit

    def _cancel_remote(self, slot: Slot, prompt_id: str) -> None:
        try:
            slot.actor.cancel.remote(prompt_id)
        except Exception:
            log.debug("cancel could not reach %s", slot.name, exc_info=True)

    def _apply_free(self) -> None:
        with self._lock:
            request, self._free = self._free, type(self._free)()
        if request.unload_models or request.free_memory:
            for slot in self._slots:
                if slot.ready:
                    slot.actor.free.remote()
                    slot.held = set()
            log.info("freed cached outputs and models on every Ray worker (/free)")

    def placement(self) -> dict[str, str]:
        return {s.running.prompt_id: s.name for s in self._slots if s.running is not None}

    def describe(self) -> list[dict[str, Any]]:
        if self.boot_error is not None:
            return [{"name": "ray", "kind": "ray", "ready": False, "error": self.boot_error}]
        return [{"name": s.name, "kind": "ray", "ready": s.ready, "pid": s.info.get("pid"),
                 "node_ip": s.info.get("node_ip"), "device": s.info.get("device"), "runs": s.runs,
                 "running": s.running.prompt_id if s.running is not None else None} for s in self._slots]

    # --- dispatch ---

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._apply_free()
            idle = [s for s in self._slots if s.ready and s.job is None]
            job = None
            if idle:
                try:
                    job = self._claim()
                except Exception:
                    log.exception("could not take the next job")
            if job is None:
                if all(s.job is None for s in self._slots):
                    self.idle.set()
                self._wake.wait(timeout=1.0)
                continue
            self.idle.clear()
            slot = self._pick(idle, job)
            slot.job = job
            slot.inbox.put(job)

    def _pick(self, idle: list[Slot], job: Job) -> Slot:
        """The idle worker holding most of the prompt's cache keys; ties go to the least used."""
        keys = prompt_keys(self.registry, job.prompt, job.targets)
        return max(idle, key=lambda s: (len(keys & s.held), -s.runs, -s.index))

    def _serve(self, slot: Slot) -> None:
        self._by_thread[threading.get_ident()] = slot
        while True:
            job = slot.inbox.get()
            if job is None:
                return
            try:
                self.run_job(job)
            except WorkerLost as lost:
                self._lost(slot, job, str(lost))
            except Exception:
                log.exception("%s failed around prompt %s", slot.name, job.prompt_id)
            finally:
                slot.running, slot.job = None, None
                slot.runs += 1
                self._wake.set()

    def execute(self, job: Job, sink: JobSink, running: Running, extra: dict[str, Any]) -> Any:
        slot = self._by_thread[threading.get_ident()]
        sink.messages.extend(self.retries.get(job.prompt_id, []))
        stream = slot.actor.run.remote(job.prompt_id, job.prompt, job.targets, extra)
        renames: dict[tuple[str, str, str], str] = {}
        final: Any = None
        try:
            for ref in stream:
                item = ray.get(ref)
                if item[0] == "event":
                    sink.emit(item[1])
                elif item[0] == "file":
                    self._receive(item, renames)
                else:
                    final = item
        except LOST as exc:
            raise WorkerLost(f"{slot.name} (pid {slot.info.get('pid')}) died: {type(exc).__name__}") from None
        self.retries.pop(job.prompt_id, None)
        if final is None or final[0] == "crash":
            detail = final[1] if final else "the worker ended the prompt without a result"
            raise RuntimeError(f"{slot.name}: {detail}")
        summary = final[1]
        slot.held = set(summary["held"])
        outputs = _renamed(summary["outputs"], renames)
        text = summary.get("validation_text")
        return RemoteResult(summary["status"], outputs, _Text(text) if text else None)

    def _receive(self, item: tuple, renames: dict[tuple[str, str, str], str]) -> None:
        """A file from a worker's private folder, written into this server's output (or temp) folder."""
        _, kind, subfolder, name, data = item
        root = (self.output_root if kind == "output" else self.temp_root).resolve()
        folder = (root / subfolder).resolve()
        if root != folder and root not in folder.parents or "/" in name or name in ("", ".", ".."):
            log.warning("a worker sent a file outside the output folder: %r/%r (dropped)", subfolder, name)
            return
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists():  # another worker counted the same file name in its own folder
            stem, dot, suffix = name.rpartition(".")
            new = f"{stem}_{uuid.uuid4().hex[:6]}.{suffix}" if dot else f"{name}_{uuid.uuid4().hex[:6]}"
            renames[(kind, subfolder, name)] = new
            target = folder / new
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    # --- faults ---

    def _lost(self, slot: Slot, job: Job, reason: str) -> None:
        """The worker died under `job`: re-queue it (or fail it after the attempts), replace the worker."""
        slot.ready = False
        log.warning("%s; prompt %s (start %d)", reason, job.prompt_id, job.attempts)
        if self._stop.is_set():
            self.store.requeue(job.prompt_id)
        elif job.attempts >= self.config.ray_attempts:
            self._fail(job, f"{reason}. The prompt was started {job.attempts} times on workers that died; "
                            f"it is not retried (--ray-attempts {self.config.ray_attempts})")
        else:
            self.retries.setdefault(job.prompt_id, []).append(
                ["execution_retry", {"prompt_id": job.prompt_id, "worker": slot.name, "attempt": job.attempts,
                                     "reason": reason, "timestamp": int(time.time() * 1000)}])
            self.store.requeue(job.prompt_id, count_attempt=True)
        if not self._stop.is_set():
            self._replace(slot)

    def _fail(self, job: Job, message: str) -> None:
        error = {"prompt_id": job.prompt_id, "exception_type": "WorkerLost", "exception_message": message,
                 "traceback": [], "node_id": None, "node_type": None, "timestamp": int(time.time() * 1000)}
        messages = [*self.retries.pop(job.prompt_id, []), ["execution_error", error]]
        self.store.finish(job.prompt_id, ERROR, {}, messages, {})
        self.secrets.pop(job.prompt_id, None)
        client = job.extra_data.get("client_id")
        if client:
            self.hub.send_threadsafe("execution_error", error, client)
        self.on_change()
        if client:
            self.hub.send_threadsafe("executing", {"node": None, "display_node": None, "prompt_id": job.prompt_id},
                                     client)

    def _replace(self, slot: Slot) -> None:
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:
            pass
        try:
            self._spawn(slot)
            self._await_ready(slot)
            log.info("%s replaced: pid %s", slot.name, slot.info.get("pid"))
        except Exception:
            log.exception("%s could not be replaced; the other workers go on", slot.name)


def _renamed(outputs: dict[str, Any], renames: dict[tuple[str, str, str], str]) -> dict[str, Any]:
    if not renames:
        return outputs
    for ui in outputs.values():
        for value in (ui.values() if isinstance(ui, dict) else ()):
            for item in (value if isinstance(value, list) else ()):
                if isinstance(item, dict) and "filename" in item:
                    key = (item.get("type"), str(item.get("subfolder") or ""), str(item["filename"]))
                    if key in renames:
                        item["filename"] = renames[key]
    return outputs
