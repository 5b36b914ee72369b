"""ComfyUI's `comfy_execution.graph_utils`: GraphBuilder, is_link, ExecutionBlocker.

A node expands itself by returning `{"result": (...), "expand": graph.finalize()}`; `result` may hold
links (`node.out(i)`) to the new nodes. Node ids are the builder's prefix + a local id. Without an
explicit prefix a builder takes one the engine allocates for the running call (unique in the run and
short however deep expansion recurses), or the one `set_default_prefix` set.
"""
from __future__ import annotations

import contextvars
from typing import Any

from compat.execution_graph import ExecutionBlocker
from engine.context import current_context
from engine.values import is_link

__all__ = ["ExecutionBlocker", "GraphBuilder", "Node", "is_link"]

_DEFAULT_PREFIX: contextvars.ContextVar[str | None] = contextvars.ContextVar("graph_builder_prefix", default=None)


def _allocated_prefix() -> str:
    explicit = _DEFAULT_PREFIX.get()
    if explicit is not None:
        return explicit
    ctx = current_context()
    if ctx is None:
        return ""
    ctx.graphs_made += 1
    return f"{ctx.graph_prefix}{ctx.graphs_made}."


class Node:
    """One node of a GraphBuilder graph."""

    def __init__(self, id: str, class_type: str, inputs: dict[str, Any]) -> None:
        self.id, self.class_type, self.inputs = id, class_type, dict(inputs)
        self.override_display_id: str | None = None

    def out(self, index: int) -> list:
        return [self.id, index]

    def set_input(self, key: str, value: Any) -> None:
        if value is None:
            self.inputs.pop(key, None)
        else:
            self.inputs[key] = value

    def get_input(self, key: str) -> Any:
        return self.inputs.get(key)

    def set_override_display_id(self, override_display_id: str) -> None:
        self.override_display_id = override_display_id

    def serialize(self) -> dict[str, Any]:
        data: dict[str, Any] = {"class_type": self.class_type, "inputs": dict(self.inputs)}
        if self.override_display_id is not None:
            data["override_display_id"] = self.override_display_id
        return data


class GraphBuilder:
    """Builds the API-format graph a node returns under "expand"."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = _allocated_prefix() if prefix is None else prefix
        self.nodes: dict[str, Node] = {}
        self.id_gen = 1

    @classmethod
    def set_default_prefix(cls, prefix_root: str, call_index: int, graph_index: int = 0) -> None:
        _DEFAULT_PREFIX.set(f"{prefix_root}.{call_index}.{graph_index}.")

    @classmethod
    def alloc_prefix(cls, root: str | None = None, call_index: int | None = None,
                     graph_index: int | None = None) -> str:
        if root is None:
            return _allocated_prefix()
        return f"{root}.{call_index or 0}.{graph_index or 0}."

    def node(self, class_type: str, id: str | None = None, **kwargs: Any) -> Node:
        if id is None:
            id = str(self.id_gen)
            self.id_gen += 1
        full = self.prefix + str(id)
        if full in self.nodes:
            return self.nodes[full]
        node = self.nodes[full] = Node(full, class_type, kwargs)
        return node

    def lookup_node(self, id: str) -> Node | None:
        return self.nodes.get(self.prefix + str(id))

    def remove_node(self, id: str) -> None:
        self.nodes.pop(self.prefix + str(id), None)

    def replace_node_output(self, node_id: str, index: int, new_value: Any) -> None:
        """Point every input linked to output `index` of `node_id` at `new_value` instead."""
        full = self.prefix + str(node_id)
        for node in self.nodes.values():
            for key, value in list(node.inputs.items()):
                if is_link(value) and value[0] == full and value[1] == index:
                    node.set_input(key, new_value)

    def finalize(self) -> dict[str, dict[str, Any]]:
        return {nid: node.serialize() for nid, node in self.nodes.items()}
