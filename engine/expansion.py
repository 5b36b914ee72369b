"""Graph expansion: a node returns {"result": ..., "expand": graph}; the graph's nodes join the running plan.

The new (ephemeral) nodes are validated like prompt nodes, get cache keys from their inputs, and are
scheduled in the same loop; the expanding node waits on the nodes its result links to, then takes their
outputs as its own. Recursion is just more nodes in the plan: no nested executor, no Python recursion.
"""
from __future__ import annotations

from collections import ChainMap
from graphlib import CycleError
from typing import Any

from .cache import fingerprint, node_key
from .graph import consumers_of, downstream, topological_order
from .runner import NodeFailure
from .values import is_link
from .workflow import NodeSpec, _check_node


class ExpansionError(Exception):
    pass


def add_expansion(run: Any, nid: str, outputs: list[list[Any]], graph: dict[str, Any]) -> list[str]:
    """Add `graph` (made by node `nid`) to `run`; return the nodes `nid`'s outputs link to.

    Raises ExpansionError (reported as a failure of `nid`) for an unknown class, a bad input or a
    cycle, before anything is added."""
    wf, runner = run.wf, run.runner
    snap = run.snapshot
    new: dict[str, NodeSpec] = {}
    for raw_id, info in graph.items():
        new_id = str(raw_id)
        if new_id in wf.nodes:
            raise ExpansionError(f"expanded node id {new_id!r} already exists in the run")
        if not isinstance(info, dict) or info.get("class_type") not in snap:
            kind = info.get("class_type") if isinstance(info, dict) else info
            raise ExpansionError(f"expanded node {new_id} has unknown class_type {kind!r}")
        new[new_id] = NodeSpec(new_id, info["class_type"], snap.get(info["class_type"]))
    nodes = ChainMap(new, wf.nodes)
    problems = []
    for new_id, spec in new.items():
        for issue in _check_node(spec, graph[new_id].get("inputs") or {}, nodes):
            problems.append(f"{new_id} ({spec.class_type}): {issue.details or issue.message}")
    if problems:
        raise ExpansionError("invalid expanded graph: " + "; ".join(problems))
    linked = [v[0] for slot in outputs for v in slot if is_link(v)]
    for src in linked:
        if src not in nodes:
            raise ExpansionError(f"result links to node {src!r}, which is neither expanded nor in the prompt")
    deps = {k: s.dependencies() for k, s in new.items()}
    try:
        order = topological_order(new, {k: [d for d in v if d in new] for k, v in deps.items()})
    except CycleError as exc:
        raise ExpansionError(f"the expanded graph has a dependency cycle: {exc.args[1]}") from None
    _check_outside_cycle(run, nid, deps, new, linked)
    real = runner.real_ids.get(nid, nid)
    display = runner.display_ids.get(nid, nid)
    for new_id in order:
        spec = new[new_id]
        wf.nodes[new_id] = spec
        runner.real_ids[new_id] = real
        runner.dynprompt.add_ephemeral_node(new_id, graph[new_id], nid,
                                            graph[new_id].get("override_display_id") or display)
        run.order_index[new_id] = len(run.order_index)
        inputs = {name: (run.keys[src], slot) for name, (src, slot) in spec.links.items()}
        run.keys[new_id] = key = node_key(spec, inputs, fingerprint(spec))
        run.by_key.setdefault(key, []).append(new_id)
    return list(dict.fromkeys(linked + [k for k in order if new[k].schema.output_node]))


def _check_outside_cycle(run: Any, nid: str, deps: dict[str, list[str]], new: dict[str, NodeSpec],
                         linked: list[str]) -> None:
    """A new node (or the result) that needs `nid` itself or a node waiting on `nid` can never run."""
    outside = {d for v in deps.values() for d in v if d not in new and d not in run.done} | \
              {s for s in linked if s not in new and s not in run.done}
    if not outside:
        return
    waiting = downstream([nid], consumers_of({k: s.dependencies() for k, s in run.wf.nodes.items()}))
    bad = sorted(d for d in outside if d == nid or d in waiting)
    if bad:
        raise ExpansionError(f"the expansion of node {nid} depends on {', '.join(bad)}, which needs node {nid}: "
                             "a dependency cycle")


def resolve(run: Any, outputs: list[list[Any]]) -> list[list[Any]]:
    """The expanding node's outputs with each link replaced by the linked output's values."""
    resolved = []
    for slot in outputs:
        values: list[Any] = []
        for v in slot:
            if is_link(v) and v[0] in run.wf.nodes and v[0] in run.values:
                values.extend(run.values[v[0]][int(v[1])])
            else:
                values.append(v)
        resolved.append(values)
    return resolved


def failure(run: Any, nid: str, exc: ExpansionError) -> NodeFailure:
    spec = run.wf.nodes[nid]
    return NodeFailure(nid, spec.class_type, "ExpansionError", str(exc))
