"""The persistent queue and history: one SQLite table of jobs (WAL, standard library).

A job is committed before POST /prompt answers, moves pending -> running -> success|error|interrupted
in single transactions, and after a crash `recover()` puts the running job back at its place in the
queue, so every accepted prompt finishes exactly once. History is the finished jobs, capped, oldest out.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PENDING, RUNNING = "pending", "running"
SUCCESS, ERROR, INTERRUPTED = "success", "error", "interrupted"
FINISHED = (SUCCESS, ERROR, INTERRUPTED)
SCHEMA_VERSION = 1
MAX_ATTEMPTS = 3  # a prompt that took the server down this often is failed, not retried forever

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT NOT NULL UNIQUE,
    number REAL NOT NULL,
    prompt TEXT NOT NULL,
    extra_data TEXT NOT NULL,
    targets TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_seq INTEGER,
    outputs TEXT,
    messages TEXT,
    meta TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, number, seq);
CREATE INDEX IF NOT EXISTS jobs_done ON jobs(done_seq);
"""
_COLUMNS = ("seq, prompt_id, number, prompt, extra_data, targets, status, created_at, started_at, "
            "finished_at, attempts, done_seq, outputs, messages, meta")


class DuplicatePromptId(ValueError):
    """A prompt id that is already in the queue or history."""


@dataclass
class Job:
    """One accepted prompt, whatever its state."""

    seq: int
    prompt_id: str
    number: float
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    targets: list[str]
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    done_seq: int | None = None
    outputs: dict[str, Any] | None = None
    messages: list[Any] | None = None
    meta: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: tuple) -> Job:
        (seq, pid, number, prompt, extra, targets, status, created, started, finished, attempts,
         done_seq, outputs, messages, meta) = row
        return cls(seq, pid, _number(number), json.loads(prompt), json.loads(extra), json.loads(targets), status,
                   created, started, finished, attempts, done_seq, _loads(outputs), _loads(messages), _loads(meta))

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def queue_item(self) -> list[Any]:
        """ComfyUI's 5-element queue/history item: [number, prompt_id, prompt, extra_data, outputs]."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.targets]

    def history_entry(self) -> dict[str, Any]:
        return {"prompt": self.queue_item(), "outputs": self.outputs or {},
                "status": {"status_str": "success" if self.status == SUCCESS else "error",
                           "completed": self.status == SUCCESS, "messages": self.messages or []},
                "meta": self.meta or {}}

    def summary(self) -> dict[str, Any]:
        """The /api/jobs view."""
        error = next((m[1] for m in self.messages or [] if m and m[0] in ("execution_error",
                                                                          "execution_interrupted")), None)
        return {"id": self.prompt_id, "status": self.status, "number": self.number,
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "attempts": self.attempts, "targets": self.targets, "client_id": self.extra_data.get("client_id"),
                "outputs": self.outputs or {}, "error": error}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class StoreLockedError(RuntimeError):
    """Another server already uses this queue (same base/user directory)."""


class StoreLock:
    """An exclusive advisory lock (flock) on `<db>.lock`, held for the life of one server.

    Two servers on one base directory would share one queue: the second one's crash recovery would put
    the first one's running prompt back to pending and run it twice. The lock makes the second refuse
    to start. The kernel drops it when the process dies, so a crash never leaves a stale lock."""

    def __init__(self, db_path: str | Path) -> None:
        import fcntl

        self.path = Path(str(db_path) + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+")  # noqa: SIM115 - held open for the server's lifetime
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            owner = self._file.read().strip() or "another process"
            self._file.close()
            raise StoreLockedError(
                f"another Diffgraph server ({owner}) already uses the queue in {self.path.parent}; stop it, "
                "or give this one its own --base-directory / --user-directory") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()}")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the descriptor releases the flock


class JobStore:
    """The jobs table behind one lock; every method is one short transaction."""

    def __init__(self, path: str | Path, history_size: int = 10000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.history_size = max(1, int(history_size))
        # Writes and reads use separate connections: in WAL mode a reader never waits for a writer's
        # fsync, so the event loop's reads (/queue, /history, status) stay fast while the worker commits.
        self._write_lock, self._read_lock, self._counter_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self._db = self._connect()
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._reader = self._connect()
        row = self._db.execute("SELECT COALESCE(MAX(ABS(number)), 0) FROM jobs").fetchone()
        self._counter = int(row[0])

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a 200 reply means the prompt is on disk
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._reader.close()
            self._db.close()

    def _tx(self, fn: Any, durable: bool = True) -> Any:
        """Run `fn(db)` in one write transaction. `durable=False` skips the fsync: for changes that
        may be lost on power failure (not on a process crash) without breaking exactly-once."""
        with self._write_lock:
            if not durable:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            finally:
                if not durable:
                    self._db.execute("PRAGMA synchronous=FULL")

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._read_lock:
            return self._reader.execute(sql, tuple(args)).fetchall()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[Job]:
        return [Job.from_row(r) for r in self._read(f"SELECT {_COLUMNS} FROM jobs {sql}", args)]

    # --- start-up ---

    def recover(self) -> tuple[list[str], list[str]]:
        """After a crash: running jobs go back to pending (or fail after MAX_ATTEMPTS starts).

        Returns (requeued ids, failed ids)."""
        def tx(db: sqlite3.Connection) -> tuple[list[str], list[str]]:
            rows = db.execute("SELECT prompt_id, attempts FROM jobs WHERE status=?", (RUNNING,)).fetchall()
            requeued = [pid for pid, attempts in rows if attempts < MAX_ATTEMPTS]
            failed = [pid for pid, attempts in rows if attempts >= MAX_ATTEMPTS]
            db.executemany("UPDATE jobs SET status=?, started_at=NULL WHERE prompt_id=?",
                           [(PENDING, pid) for pid in requeued])
            for pid in failed:
                msg = ["execution_error", {"prompt_id": pid, "exception_type": "ServerCrash", "timestamp": _ms(),
                                           "exception_message": f"the server stopped {MAX_ATTEMPTS} times "
                                                                "while running this prompt; it is not retried"}]
                self._finish_in(db, pid, ERROR, {}, [msg], {})
            return requeued, failed
        return self._tx(tx)

    # --- the queue ---

    def next_number(self, front: bool = False) -> int:
        with self._counter_lock:
            self._counter += 1
            return -self._counter if front else self._counter

    def add(self, prompt_id: str, number: float, prompt: dict[str, Any], extra_data: dict[str, Any],
            targets: list[str]) -> Job:
        """Commit a new pending job; raises DuplicatePromptId if the id is taken."""
        now = time.time()
        row = (prompt_id, float(number), json.dumps(prompt), json.dumps(extra_data), json.dumps(targets),
               PENDING, now)

        def tx(db: sqlite3.Connection) -> int:
            try:
                cur = db.execute("INSERT INTO jobs (prompt_id, number, prompt, extra_data, targets, status, "
                                 "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            except sqlite3.IntegrityError:
                raise DuplicatePromptId(prompt_id) from None
            return int(cur.lastrowid or 0)
        seq = self._tx(tx)
        return Job(seq, prompt_id, _number(number), prompt, extra_data, targets, PENDING, now)

    def get(self, prompt_id: str) -> Job | None:
        found = self._query("WHERE prompt_id=?", (prompt_id,))
        return found[0] if found else None

    def pending(self, limit: int = -1) -> list[Job]:
        return self._query("WHERE status=? ORDER BY number, seq LIMIT ?", (PENDING, limit))

    def running(self) -> list[Job]:
        return self._query("WHERE status=? ORDER BY started_at", (RUNNING,))

    def remaining(self) -> int:
        """Pending plus running, as ComfyUI's queue_remaining."""
        return int(self._read("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", (PENDING, RUNNING))[0][0])

    def claim_next(self, held: Collection[str]) -> Job | None:
        """Atomically move the first pending job not in `held` to running."""
        def tx(db: sqlite3.Connection) -> Job | None:
            rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE status=? ORDER BY number, seq LIMIT ?",
                              (PENDING, len(held) + 1)).fetchall()
            job = next((Job.from_row(r) for r in rows if r[1] not in held), None)
            if job is not None:
                job.status, job.started_at, job.attempts = RUNNING, time.time(), job.attempts + 1
                db.execute("UPDATE jobs SET status=?, started_at=?, attempts=? WHERE prompt_id=?",
                           (RUNNING, job.started_at, job.attempts, job.prompt_id))
            return job
        # Not fsynced: if this is lost the job is simply still pending, which recover() would make it anyway.
        return self._tx(tx, durable=False)

    def requeue(self, prompt_id: str, count_attempt: bool = False) -> bool:
        """Put a running job back (the server is stopping); a graceful stop does not count as a start.
        `count_attempt`: the start counts (its worker died), so MAX_ATTEMPTS-style limits see it."""
        keep = "attempts" if count_attempt else "MAX(attempts-1, 0)"
        return self._tx(lambda db: db.execute(
            f"UPDATE jobs SET status=?, started_at=NULL, attempts={keep} WHERE prompt_id=? AND status=?",
            (PENDING, prompt_id, RUNNING)).rowcount > 0, durable=not count_attempt)

    def delete_pending(self, prompt_ids: list[str] | None = None) -> int:
        """Remove pending jobs (all when `prompt_ids` is None); running and finished ones stay."""
        def tx(db: sqlite3.Connection) -> int:
            if prompt_ids is None:
                return db.execute("DELETE FROM jobs WHERE status=?", (PENDING,)).rowcount
            return sum(db.execute("DELETE FROM jobs WHERE status=? AND prompt_id=?", (PENDING, pid)).rowcount
                       for pid in prompt_ids)
        return self._tx(tx)

    # --- finishing ---

    def finish(self, prompt_id: str, status: str, outputs: dict[str, Any], messages: list[Any],
               meta: dict[str, Any], from_status: str = RUNNING) -> bool:
        """Record the result of a job in one transaction and trim history. False if not `from_status`."""
        return self._tx(lambda db: self._finish_in(db, prompt_id, status, outputs, messages, meta, from_status))

    def _finish_in(self, db: sqlite3.Connection, prompt_id: str, status: str, outputs: dict[str, Any],
                   messages: list[Any], meta: dict[str, Any], from_status: str = RUNNING) -> bool:
        done = db.execute("SELECT COALESCE(MAX(done_seq), 0) + 1 FROM jobs").fetchone()[0]
        cur = db.execute("UPDATE jobs SET status=?, finished_at=?, done_seq=?, outputs=?, messages=?, meta=? "
                         "WHERE prompt_id=? AND status=?",
                         (status, time.time(), done, json.dumps(outputs), json.dumps(messages), json.dumps(meta),
                          prompt_id, from_status))
        if cur.rowcount:
            db.execute("DELETE FROM jobs WHERE done_seq IS NOT NULL AND done_seq <= ?",
                       (done - self.history_size,))
        return bool(cur.rowcount)

    # --- history and jobs ---

    def history(self, max_items: int | None = None, offset: int | None = None) -> list[Job]:
        """Finished jobs, oldest first; like ComfyUI, `max_items` alone gives the newest ones."""
        if offset is None or offset < 0:
            if max_items is None:
                return self._query("WHERE done_seq IS NOT NULL ORDER BY done_seq")
            newest = self._query("WHERE done_seq IS NOT NULL ORDER BY done_seq DESC LIMIT ?", (max_items,))
            return newest[::-1]
        limit = -1 if max_items is None else max_items
        return self._query("WHERE done_seq IS NOT NULL ORDER BY done_seq LIMIT ? OFFSET ?", (limit, offset))

    def delete_history(self, prompt_ids: list[str] | None = None) -> int:
        def tx(db: sqlite3.Connection) -> int:
            if prompt_ids is None:
                return db.execute("DELETE FROM jobs WHERE done_seq IS NOT NULL").rowcount
            return sum(db.execute("DELETE FROM jobs WHERE done_seq IS NOT NULL AND prompt_id=?", (pid,)).rowcount
                       for pid in prompt_ids)
        return self._tx(tx)

    def jobs(self, status: str | None = None, limit: int = 100, offset: int = 0) -> tuple[list[Job], int]:
        """Newest first; with the total count for paging."""
        where, args = ("WHERE status=?", [status]) if status else ("", [])
        total = int(self._read(f"SELECT COUNT(*) FROM jobs {where}", args)[0][0])
        return self._query(f"{where} ORDER BY seq DESC LIMIT ? OFFSET ?", [*args, limit, offset]), total


def _ms() -> int:
    return int(time.time() * 1000)
