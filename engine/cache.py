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
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
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
    size: int  # what this entry would hold alone: private bytes + every storage it references
    private: int = 0
    storages: dict[Hashable, int] = field(default_factory=dict)


class OutputCache:
    """Node outputs by cache key. Policy `lru` keeps entries across runs within `budget_bytes`
    (least recently used out first); policy `none` keeps nothing across runs. Thread-safe.

    A storage (a tensor's memory) is counted once across the whole cache, however many entries hold
    it: a MODEL clone that shares the checkpoint's weights costs nothing more, so it cannot push the
    checkpoint out of the budget. `size_bytes` is private bytes + each distinct storage once."""

    def __init__(self, policy: str = "lru", budget_bytes: int = 4 << 30) -> None:
        if policy not in ("lru", "none"):
            raise ValueError(f"cache policy {policy!r} is not one of 'lru', 'none'")
        self.policy = policy
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._refs: dict[Hashable, list[int]] = {}  # storage -> [entries holding it, bytes]
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
        private, storages = measure(outputs)
        size = private + sum(storages.values())
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._release(old)
            if size > self.budget_bytes:
                return
            entry = self._entries[key] = CacheEntry(outputs, ui, size, private, storages)
            self._hold(entry)
            while self._bytes > self.budget_bytes and self._entries:
                _, evicted = self._entries.popitem(last=False)
                self._release(evicted)

    def _hold(self, entry: CacheEntry) -> None:
        self._bytes += entry.private
        for sid, nbytes in entry.storages.items():
            ref = self._refs.get(sid)
            if ref is None:
                self._refs[sid] = [1, nbytes]
                self._bytes += nbytes
            else:
                ref[0] += 1

    def _release(self, entry: CacheEntry) -> None:
        self._bytes -= entry.private
        for sid in entry.storages:
            ref = self._refs[sid]
            ref[0] -= 1
            if ref[0] == 0:
                del self._refs[sid]
                self._bytes -= ref[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._refs.clear()
            self._bytes = 0


# An object may say which storages it holds by defining `__cache_storages__(self)`, returning
# (identity, bytes) pairs; the walk then trusts it instead of descending into its attributes. The nodes
# package gives its MODEL/CLIP/VAE objects one (their modules' parameters and buffers); a bare tensor is
# recognised by its `untyped_storage()`. Both use the identity (device string, storage address), so a
# weight held by a model and the same tensor seen bare are one storage.
STORAGES_HOOK = "__cache_storages__"


def storage_identity(device: Any, address: int) -> tuple[str, str, int]:
    return ("storage", str(device), int(address))


def estimate_size(value: Any, limit: int = 200_000) -> int:
    """Bytes held by a value: tensors by their storage (each storage counted once), arrays by nbytes,
    containers and plain objects walked iteratively (at most `limit` objects)."""
    private, storages = measure(value, limit)
    return private + sum(storages.values())


def measure(value: Any, limit: int = 200_000) -> tuple[int, dict[Hashable, int]]:
    """(bytes held privately, {storage identity: bytes}) for a value, walked iteratively."""
    seen: set[int] = set()
    storages: dict[Hashable, int] = {}
    total = 0
    stack = [value]
    visited = 0
    while stack and visited < limit:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        visited += 1
        total += _leaf_size(obj, storages, stack)
    return total, storages


def _leaf_size(obj: Any, storages: dict[Hashable, int], stack: list[Any]) -> int:
    if obj is None or isinstance(obj, (bool, int, float)):
        return 0
    if isinstance(obj, (str, bytes, bytearray)):
        return len(obj)
    hook = getattr(type(obj), STORAGES_HOOK, None)
    if callable(hook):
        storages.update(hook(obj))
        return 0
    storage = getattr(obj, "untyped_storage", None)
    if callable(storage) and hasattr(obj, "shape"):  # a torch tensor, counted by its storage
        try:
            st = storage()
            if str(st.device) != "meta":  # shapes only, no memory
                storages[storage_identity(st.device, st.data_ptr())] = int(st.nbytes())
        except Exception:  # meta tensors and friends have no real storage
            pass
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
