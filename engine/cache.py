"""Content-addressed cache keys and the output cache kept across runs under a byte budget.

A node's key hashes its class, its constant inputs, its IS_CHANGED fingerprint and its inputs'
keys, so identical subgraphs share results whatever their ids, and a changed widget changes the
key of that node and every node below it, nothing else. Keys are computed in topological order
(linear, no recursion).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .workflow import NodeSpec

log = logging.getLogger(__name__)


def fingerprint(spec: NodeSpec) -> str:
    """IS_CHANGED's answer, canonicalised; a fresh nonce when it raises or returns NaN (always re-run)."""
    fn = getattr(spec.schema.cls, "IS_CHANGED", None)
    if fn is None:
        return ""
    try:
        params = inspect.signature(fn).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        kwargs = {**{n: None for n in spec.links}, **spec.constants}
        if "unique_id" in params or takes_all and "unique_id" in spec.schema.hidden:
            kwargs["unique_id"] = spec.id
        if not takes_all:
            kwargs = {k: v for k, v in kwargs.items() if k in params}
        result = fn(**kwargs)
    except Exception as exc:  # user code: failing to fingerprint means "always re-run", not a crash
        log.debug("IS_CHANGED of %s #%s raised %r; re-running it", spec.class_type, spec.id, exc)
        return "nonce:" + uuid.uuid4().hex
    if isinstance(result, float) and math.isnan(result):
        return "nonce:" + uuid.uuid4().hex
    return _canonical(result)


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return "nonce:" + uuid.uuid4().hex  # unserialisable: never equal to anything, like ComfyUI's NaN


def node_key(spec: NodeSpec, input_keys: dict[str, tuple[str, int]], fp: str) -> str:
    """The cache key of one node, given the keys of the nodes its links come from."""
    opts_out = spec.schema.not_idempotent or "UNIQUE_ID" in spec.schema.hidden.values()
    payload = [spec.class_type, spec.constants, fp,
               sorted((name, key, slot) for name, (key, slot) in input_keys.items()),
               spec.id if opts_out else None]
    return hashlib.sha256(_canonical(payload).encode()).hexdigest()


def compute_keys(order: Iterable[str], nodes: dict[str, NodeSpec]) -> dict[str, str]:
    """Keys for `nodes` visited in topological `order`."""
    keys: dict[str, str] = {}
    for nid in order:
        spec = nodes[nid]
        inputs = {name: (keys[src], slot) for name, (src, slot) in spec.links.items()}
        keys[nid] = node_key(spec, inputs, fingerprint(spec))
    return keys


@dataclass
class CacheEntry:
    outputs: list[list[Any]]
    ui: dict[str, Any] | None
    size: int


class OutputCache:
    """Node outputs by cache key. Policy `lru` keeps entries across runs within `budget_bytes`
    (least recently used out first); policy `none` keeps nothing across runs. Thread-safe."""

    def __init__(self, policy: str = "lru", budget_bytes: int = 4 << 30) -> None:
        if policy not in ("lru", "none"):
            raise ValueError(f"cache policy {policy!r} is not one of 'lru', 'none'")
        self.policy = policy
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, outputs: list[list[Any]], ui: dict[str, Any] | None) -> None:
        if self.policy == "none":
            return
        size = estimate_size(outputs)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            if size > self.budget_bytes:
                return
            self._entries[key] = CacheEntry(outputs, ui, size)
            self._bytes += size
            while self._bytes > self.budget_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def estimate_size(value: Any, limit: int = 200_000) -> int:
    """Bytes held by a value: tensors by their storage (each storage counted once), arrays by nbytes,
    containers and plain objects walked iteratively (at most `limit` objects)."""
    seen: set[int] = set()
    total = 0
    stack = [value]
    visited = 0
    while stack and visited < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        visited += 1
        total += _leaf_size(obj, seen, stack)
    return total


def _leaf_size(obj: Any, seen: set[int], stack: list[Any]) -> int:
    if obj is None or isinstance(obj, (bool, int, float)):
        return 0
    if isinstance(obj, (str, bytes, bytearray)):
        return len(obj)
    storage = getattr(obj, "untyped_storage", None)
    if callable(storage) and hasattr(obj, "shape"):  # a torch tensor, counted by its storage
        try:
            st = storage()
            key = ("storage", st.data_ptr())
            if hash(key) in seen:
                return 0
            seen.add(hash(key))
            return int(st.nbytes())
        except Exception:  # meta tensors and friends have no real storage
            return 0
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(obj, dict):
        stack.extend(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        stack.extend(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        stack.extend(vars(obj).values())
    return 0  # containers and plain objects: only what they hold is counted
