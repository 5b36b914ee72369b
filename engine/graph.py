"""Graph structure of a workflow: which nodes a run needs, their order, and cycles.

Everything here is iterative (no recursion over links), so a 10,000-node chain is as easy as a
10-node one. Ordering uses the standard library's graphlib.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from graphlib import TopologicalSorter


def ancestors(roots: Iterable[str], deps: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node reachable from `roots` by following `deps` (roots included)."""
    seen: set[str] = set()
    stack = [r for r in roots]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(d for d in deps.get(node, ()) if d not in seen)
    return seen


def consumers_of(deps: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Invert a dependency map: for each node, the nodes that read one of its outputs."""
    out: dict[str, list[str]] = {n: [] for n in deps}
    for node, sources in deps.items():
        for src in set(sources):
            out.setdefault(src, []).append(node)
    return out


def topological_order(nodes: Iterable[str], deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Nodes in an order where every node comes after its dependencies (graphlib; raises CycleError)."""
    nodes = list(nodes)
    member = set(nodes)
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node in nodes:
        sorter.add(node, *(d for d in deps.get(node, ()) if d in member))
    return list(sorter.static_order())


def nodes_in_cycles(nodes: Iterable[str], deps: Mapping[str, Iterable[str]]) -> set[str]:
    """Nodes that lie on a dependency cycle (strongly connected components of size > 1, or self-loops).

    Iterative Tarjan: linear in nodes + links, no recursion.
    """
    member = set(nodes)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: set[str] = set()
    counter = 0
    for start in member:
        if start in index:
            continue
        work = [(start, iter([d for d in deps.get(start, ()) if d in member]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter([d for d in deps.get(child, ()) if d in member])))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in deps.get(node, ()):
                    result.update(component)
    return result


def downstream(start: Iterable[str], consumers: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node that depends, directly or not, on one of `start` (start excluded unless reached)."""
    seen: set[str] = set()
    queue = deque(start)
    while queue:
        node = queue.popleft()
        for nxt in consumers.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
