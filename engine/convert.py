"""UI-format (LiteGraph) workflows -> API-format prompts, the way ComfyUI's frontend serialises them.

`widgets_values` are positional, so the node schemas (in `/object_info` shape, from a NodeRegistry or
a saved `/object_info` dump) name them. Handles the seed's `control_after_generate` extra value,
upload buttons, PrimitiveNode/Note/Reroute, muted and bypassed nodes, and subgraph definitions.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import EngineError

MUTED, BYPASSED = 2, 4
VIRTUAL_TYPES = frozenset({"Note", "MarkdownNote", "PrimitiveNode", "Reroute"})
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
# The frontend adds a control widget after these even when the schema does not ask (old exports).
SEED_NAMES = frozenset({"seed", "noise_seed"})
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload")
SUBGRAPH_INPUT, SUBGRAPH_OUTPUT = "-10", "-20"

NodeInfo = Callable[[str], "Mapping[str, Any] | None"]


class ConversionError(EngineError):
    """The UI workflow cannot be converted; `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("cannot convert workflow: " + "; ".join(self.problems))


@dataclass
class Conversion:
    """An API-format prompt and what the converter had to guess (`warnings`)."""

    prompt: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def registry_node_info(registry: Any) -> NodeInfo:
    """Schema lookup backed by a NodeRegistry (INPUT_TYPES is read once per type)."""
    memo: dict[str, Mapping[str, Any] | None] = {}

    def lookup(name: str) -> Mapping[str, Any] | None:
        if name not in memo:
            memo[name] = registry.schema(name).object_info() if name in registry else None
        return memo[name]
    return lookup


def mapping_node_info(object_info: Mapping[str, Any]) -> NodeInfo:
    """Schema lookup backed by a `/object_info` dict."""
    return lambda name: object_info.get(name)


def convert_workflow(workflow: Any, node_info: NodeInfo) -> Conversion:
    """Convert a UI workflow (schema 0.4 or 1) to an API prompt.

    Raises ConversionError when the input is not a UI workflow or names node types without a schema.
    """
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        raise ConversionError(["not a UI-format workflow: expected an object with a 'nodes' list"])
    subgraphs = {}
    for sub in (workflow.get("definitions") or {}).get("subgraphs") or []:
        if isinstance(sub, dict) and "id" in sub:
            subgraphs[str(sub["id"])] = sub
    conv = _Converter(node_info, subgraphs)
    conv.walk(_Graph.build(workflow, "", None, None))
    if conv.problems:
        raise ConversionError(conv.problems)
    _drop_dangling_links(conv.prompt)
    return Conversion(conv.prompt, conv.warnings)


@dataclass
class _Graph:
    """One graph level: the top workflow, or one subgraph instance (ids get `prefix`)."""

    nodes: dict[str, dict[str, Any]]
    links: dict[str, tuple[str, int, str, int]]  # link id -> (origin, origin slot, target, target slot)
    prefix: str
    parent: _Graph | None
    instance: dict[str, Any] | None
    definition: dict[str, Any] | None

    @classmethod
    def build(cls, graph: dict[str, Any], prefix: str, parent: _Graph | None,
              instance: dict[str, Any] | None) -> _Graph:
        nodes = {str(n["id"]): n for n in graph.get("nodes") or [] if isinstance(n, dict) and "id" in n}
        links: dict[str, tuple[str, int, str, int]] = {}
        for link in graph.get("links") or []:
            parsed = _parse_link(link)
            if parsed is not None:
                links[parsed[0]] = parsed[1:]
        return cls(nodes, links, prefix, parent, instance, graph if instance is not None else None)


def _parse_link(link: Any) -> tuple[str, str, int, str, int] | None:
    """Either form: `[id, origin, slot, target, slot, type]` (0.4) or `{id, origin_id, ...}` (1)."""
    try:
        if isinstance(link, list) and len(link) >= 5:
            return str(link[0]), str(link[1]), int(link[2]), str(link[3]), int(link[4])
        if isinstance(link, dict):
            return (str(link["id"]), str(link["origin_id"]), int(link["origin_slot"]),
                    str(link["target_id"]), int(link["target_slot"]))
    except (KeyError, TypeError, ValueError):
        return None
    return None


class _Converter:
    def __init__(self, node_info: NodeInfo, subgraphs: dict[str, dict[str, Any]]):
        self.node_info = node_info
        self.subgraphs = subgraphs
        self.prompt: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.problems: list[str] = []

    def walk(self, graph: _Graph, depth: int = 0) -> None:
        for nid, node in graph.nodes.items():
            ntype = str(node.get("type", ""))
            if node.get("mode") in (MUTED, BYPASSED) or ntype in VIRTUAL_TYPES:
                continue
            if ntype in self.subgraphs:
                if depth > 32:
                    self.problems.append(f"subgraph nesting deeper than 32 at node {graph.prefix}{nid}")
                    continue
                self.walk(_Graph.build(self.subgraphs[ntype], f"{graph.prefix}{nid}:", graph, node), depth + 1)
                continue
            info = self.node_info(ntype)
            if info is None:
                self.problems.append(f"node {graph.prefix}{nid}: unknown node type {ntype!r}")
                continue
            self.prompt[graph.prefix + nid] = self.convert_node(graph, nid, node, info)

    def convert_node(self, graph: _Graph, nid: str, node: dict[str, Any], info: Mapping[str, Any]) -> dict:
        label = f"node {graph.prefix}{nid} ({node.get('type')})"
        inputs = self.widget_inputs(label, node, info)
        for slot in node.get("inputs") or []:
            if not isinstance(slot, dict) or slot.get("link") is None:
                continue
            name = (slot.get("widget") or {}).get("name") or slot.get("name")
            resolved = self.resolve(graph, str(slot["link"]))
            if resolved is None:
                continue  # muted/missing source: a socket is left out, a converted widget keeps its value
            if resolved[0] == "link":
                inputs[name] = [resolved[1], resolved[2]]
            else:
                inputs[name] = _wrap(resolved[1])
        title = node.get("title") or info.get("display_name") or node.get("type")
        return {"inputs": inputs, "class_type": str(node.get("type")), "_meta": {"title": title}}

    def widget_inputs(self, label: str, node: dict[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
        """Name the node's widgets_values by the schema's widget order, skipping UI-only extras."""
        widgets = _widget_specs(info)
        raw = node.get("widgets_values")
        if isinstance(raw, dict):  # some editors save widgets by name
            return {name: _wrap(raw[name]) for name, _ in widgets if name in raw}
        values = list(raw) if isinstance(raw, list) else []
        out: dict[str, Any] = {}
        i = 0
        for w, (name, opts) in enumerate(widgets):
            if i >= len(values):
                self._fill_default(label, name, opts, out)
                continue
            out[name] = _wrap(values[i])
            i += 1
            remaining = len(widgets) - w - 1
            surplus = len(values) - i - remaining
            if surplus > 0 and _has_control(name, opts) and _is_control_marker(values[i]):
                i += 1
            elif surplus > 0 and any(opts.get(flag) for flag in UPLOAD_FLAGS):
                i += 1  # the upload button's own value ("image")
        if i < len(values):
            self.warnings.append(f"{label}: {len(values) - i} widget value(s) left over: {values[i:]!r}")
        return out

    def _fill_default(self, label: str, name: str, opts: dict[str, Any], out: dict[str, Any]) -> None:
        if "default" in opts:
            out[name] = _wrap(opts["default"])
            self.warnings.append(f"{label}: no saved value for {name!r}; used its default {opts['default']!r}")
        elif isinstance(opts.get("__choices__"), list) and opts["__choices__"]:
            out[name] = opts["__choices__"][0]
            self.warnings.append(f"{label}: no saved value for {name!r}; used the first choice")

    def resolve(self, graph: _Graph, link_id: str, hops: int = 0) -> tuple[str, Any, int] | None:
        """Follow a link to a real source: ("link", api id, slot), ("value", v, 0), or None (dropped)."""
        if hops > 256:
            self.problems.append(f"link {link_id} loops through reroutes or bypassed nodes")
            return None
        link = graph.links.get(link_id)
        if link is None:
            return None
        origin, slot = link[0], link[1]
        if origin == SUBGRAPH_INPUT:
            return self._resolve_subgraph_input(graph, slot, hops)
        node = graph.nodes.get(origin)
        if node is None or node.get("mode") == MUTED:
            return None
        ntype = str(node.get("type", ""))
        if node.get("mode") == BYPASSED:
            upstream = _bypass_input(node, slot)
            return None if upstream is None else self.resolve(graph, upstream, hops + 1)
        if ntype == "Reroute":
            ins = node.get("inputs") or []
            up = ins[0].get("link") if ins and isinstance(ins[0], dict) else None
            return None if up is None else self.resolve(graph, str(up), hops + 1)
        if ntype == "PrimitiveNode":
            values = node.get("widgets_values")
            return ("value", values[0], 0) if isinstance(values, list) and values else None
        if ntype in VIRTUAL_TYPES:
            return None
        if ntype in self.subgraphs:
            return self._resolve_subgraph_output(graph, origin, node, slot, hops)
        return ("link", graph.prefix + origin, slot)

    def _resolve_subgraph_input(self, graph: _Graph, slot: int, hops: int) -> tuple[str, Any, int] | None:
        if graph.instance is None or graph.parent is None:
            return None
        slots = graph.instance.get("inputs") or []
        name = _subgraph_io_name(graph.definition, "inputs", slot)
        match = next((s for s in slots if isinstance(s, dict) and s.get("name") == name), None)
        if match is None and slot < len(slots) and isinstance(slots[slot], dict):
            match = slots[slot]
        if match is None or match.get("link") is None:
            return None
        return self.resolve(graph.parent, str(match["link"]), hops + 1)

    def _resolve_subgraph_output(self, graph: _Graph, origin: str, node: dict[str, Any], slot: int,
                                 hops: int) -> tuple[str, Any, int] | None:
        inner = _Graph.build(self.subgraphs[str(node["type"])], f"{graph.prefix}{origin}:", graph, node)
        for link_id, (_, _, target, target_slot) in inner.links.items():
            if target == SUBGRAPH_OUTPUT and target_slot == slot:
                return self.resolve(inner, link_id, hops + 1)
        return None


def _widget_specs(info: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, options) of the inputs that are widgets, in the editor's order (required, optional)."""
    sections = info.get("input") or {}
    order = info.get("input_order") or {}
    out = []
    for section in ("required", "optional"):
        specs = sections.get(section) or {}
        for name in order.get(section) or list(specs):
            spec = specs.get(name)
            if not isinstance(spec, (list, tuple)) or not spec:
                continue
            opts = dict(spec[1]) if len(spec) > 1 and isinstance(spec[1], dict) else {}
            kind = spec[0]
            if isinstance(kind, (list, tuple)):
                opts["__choices__"] = list(kind)
            elif kind not in WIDGET_TYPES:
                continue
            if opts.get("forceInput"):
                continue
            out.append((name, opts))
    return out


def _has_control(name: str, opts: dict[str, Any]) -> bool:
    return bool(opts.get("control_after_generate")) or name in SEED_NAMES


def _is_control_marker(value: Any) -> bool:
    # 2023 exports saved a boolean `true` where newer ones save "randomize"/"fixed"/...
    return isinstance(value, bool) or (isinstance(value, str) and value in CONTROL_VALUES)


def _wrap(value: Any) -> Any:
    # A list constant would read as a link: API format wraps list values.
    return {"__value__": value} if isinstance(value, list) else value


def _bypass_input(node: dict[str, Any], slot: int) -> str | None:
    """The link a bypassed node passes through for output `slot`: same index and type, else first of type."""
    outputs = node.get("outputs") or []
    inputs = [i for i in node.get("inputs") or [] if isinstance(i, dict)]
    out_type = outputs[slot].get("type") if slot < len(outputs) and isinstance(outputs[slot], dict) else None
    candidates = []
    if slot < len(inputs) and inputs[slot].get("type") == out_type:
        candidates.append(inputs[slot])
    candidates += [i for i in inputs if i.get("type") == out_type]
    for cand in candidates:
        if cand.get("link") is not None:
            return str(cand["link"])
    return None


def _subgraph_io_name(definition: dict[str, Any] | None, key: str, slot: int) -> str | None:
    items = (definition or {}).get(key) or []
    if slot < len(items) and isinstance(items[slot], dict):
        return items[slot].get("name")
    return None


def _drop_dangling_links(prompt: dict[str, dict[str, Any]]) -> None:
    """Links into nodes that were left out (unknown or removed) are deleted, as the frontend does."""
    for node in prompt.values():
        for name, value in list(node["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) \
                    and value[0] not in prompt:
                del node["inputs"][name]
