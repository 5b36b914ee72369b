"""NodeRegistry: the set of node classes one engine instance knows, with their source pack.

An instance is created by whoever starts the engine and passed around; there is no module-global
node table. Names are unique: a clash is refused and reported, never silently overwritten.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .errors import NodeDefinitionError
from .schema import NodeSchema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registered:
    cls: type
    pack: str
    display_name: str | None
    python_module: str


class NodeRegistry:
    """Node classes by type name. `schema(name)` reads INPUT_TYPES afresh (combos may be dynamic);
    `snapshot()` memoises schemas for one validation or run."""

    def __init__(self) -> None:
        self._nodes: dict[str, Registered] = {}

    def register(self, cls: type, name: str | None = None, display_name: str | None = None,
                 pack: str = "builtin", python_module: str | None = None) -> NodeSchema:
        """Add one class; raises NodeDefinitionError on a bad class or a name already taken."""
        name = name or getattr(cls, "NODE_NAME", None) or cls.__name__
        if name in self._nodes:
            owner = self._nodes[name].pack
            raise NodeDefinitionError(f"node name {name!r} from {pack} is already registered by {owner}")
        module = python_module or ("nodes" if pack == "builtin" else f"custom_nodes.{pack}")
        schema = NodeSchema.from_class(cls, name, display_name, module)  # validates the class
        self._nodes[name] = Registered(cls, pack, display_name, module)
        return schema

    def register_module(self, module: ModuleType, pack: str = "builtin",
                        python_module: str | None = None) -> tuple[list[str], list[str]]:
        """Register a module's NODE_CLASS_MAPPINGS and its `@node` classes.

        Returns (registered names, refusals as messages). One bad class never stops the others.
        """
        mappings: dict[str, Any] = dict(getattr(module, "NODE_CLASS_MAPPINGS", {}) or {})
        display: dict[str, str] = dict(getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}) or {})
        for value in vars(module).values():
            if isinstance(value, type) and getattr(value, "NODE_NAME", None) and \
                    value.__module__.startswith(module.__name__) and value not in mappings.values():
                mappings.setdefault(value.NODE_NAME, value)
        added, refused = [], []
        for name, cls in mappings.items():
            try:
                self.register(cls, name, display.get(name), pack, python_module)
                added.append(name)
            except NodeDefinitionError as exc:
                refused.append(str(exc))
        for name in display:
            if name not in mappings:
                refused.append(f"display name for {name!r} refused: {pack} does not define that node")
        return added, refused

    def unregister_pack(self, pack: str) -> None:
        for name in [n for n, r in self._nodes.items() if r.pack == pack]:
            del self._nodes[name]

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def names(self) -> list[str]:
        return list(self._nodes)

    def get_class(self, name: str) -> type | None:
        reg = self._nodes.get(name)
        return reg.cls if reg else None

    def pack_of(self, name: str) -> str | None:
        reg = self._nodes.get(name)
        return reg.pack if reg else None

    def nodes_of_pack(self, pack: str) -> list[str]:
        return [n for n, r in self._nodes.items() if r.pack == pack]

    def schema(self, name: str) -> NodeSchema:
        reg = self._nodes[name]
        return NodeSchema.from_class(reg.cls, name, reg.display_name, reg.python_module)

    def snapshot(self) -> SchemaSnapshot:
        return SchemaSnapshot(self)

    def object_info(self) -> dict[str, dict[str, Any]]:
        """ComfyUI's `/object_info`. A node whose INPUT_TYPES raises is logged and left out."""
        out = {}
        for name in self._nodes:
            try:
                out[name] = self.schema(name).object_info()
            except NodeDefinitionError as exc:
                log.warning("object_info: leaving out %s: %s", name, exc)
        return out


class SchemaSnapshot:
    """Schemas memoised for one validation or run: INPUT_TYPES is called once per class."""

    def __init__(self, registry: NodeRegistry) -> None:
        self.registry = registry
        self._schemas: dict[str, NodeSchema] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.registry

    def get(self, name: str) -> NodeSchema:
        schema = self._schemas.get(name)
        if schema is None:
            schema = self._schemas[name] = self.registry.schema(name)
        return schema
