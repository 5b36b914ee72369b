"""Executor overhead on 1,000-node graphs of trivial nodes: validation, cold run, fully cached re-run.

Reference, measured in the same run: calling the same node functions directly in dependency order
(the work itself, no engine). Prints per-node figures and the engine/reference ratio.
Targets on a 2-core CPU: < 50 us per node cold, < 20 ms for the cached re-run of 1,000 nodes.
Usage: python bench/executor.py [--nodes 1000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import INT, Input, NodeRegistry, Output, node  # noqa: E402
from engine.executor import Executor  # noqa: E402
from engine.workflow import validate_prompt  # noqa: E402


@node("BenchConst")
class BenchConst:
    inputs = (Input("value", INT, default=0, min=0, max=10**9),)
    outputs = (Output(INT),)

    def run(self, value):
        return (value,)


@node("BenchAdd")
class BenchAdd:
    inputs = (Input("a", INT), Input("b", INT, default=1, min=0, max=10))
    outputs = (Output(INT),)

    def run(self, a, b):
        return (a + b,)


class BenchSum:
    """An output node summing any number of linked inputs (dynamic inputs, as ComfyUI allows)."""
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    def run(self, **values):
        return {"ui": {"sum": [sum(values.values())]}}


def chain(n: int) -> dict:
    wf = {"0": {"class_type": "BenchConst", "inputs": {"value": 1}}}
    for i in range(1, n - 1):
        wf[str(i)] = {"class_type": "BenchAdd", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    wf["out"] = {"class_type": "BenchSum", "inputs": {"x": [str(n - 2), 0]}}
    return wf


def fan_in(n: int) -> dict:
    wf = {str(i): {"class_type": "BenchConst", "inputs": {"value": i}} for i in range(n - 1)}
    wf["out"] = {"class_type": "BenchSum", "inputs": {f"v{i}": [str(i), 0] for i in range(n - 1)}}
    return wf


def reference(wf: dict, order: list[str], classes: dict) -> float:
    """The same node calls with no engine: the floor the executor's overhead is measured against."""
    start = time.perf_counter()
    values: dict[str, object] = {}
    for nid in order:
        spec = wf[nid]
        kwargs = {k: values[v[0]] if isinstance(v, list) else v for k, v in spec["inputs"].items()}
        out = classes[spec["class_type"]]().run(**kwargs)
        values[nid] = out[0] if isinstance(out, tuple) else out
    return time.perf_counter() - start


def measure(name: str, wf: dict, registry: NodeRegistry, repeat: int) -> None:
    n = len(wf)
    val = min(_timed(lambda: validate_prompt(wf, registry)) for _ in range(repeat))
    colds, cached = [], []
    for _ in range(repeat):
        ex = Executor(registry)
        colds.append(_timed(lambda ex=ex: ex.run(wf)))
        cached.append(_timed(lambda ex=ex: ex.run(wf)))
    order = validate_prompt(wf, registry).workflow.order
    classes = {k: registry.get_class(k) for k in ("BenchConst", "BenchAdd", "BenchSum")}
    ref = min(reference(wf, order, classes) for _ in range(repeat))
    cold = min(colds)
    print(f"{name:8s} {n} nodes: validate {val * 1e3:7.2f} ms ({val / n * 1e6:5.1f} us/node) | "
          f"cold run {cold * 1e3:7.2f} ms ({cold / n * 1e6:5.1f} us/node, median "
          f"{statistics.median(colds) / n * 1e6:5.1f}) | cached re-run {min(cached) * 1e3:6.2f} ms | "
          f"reference {ref * 1e3:6.2f} ms | cold/reference {cold / ref:5.1f}x")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    registry = NodeRegistry()
    for cls in (BenchConst, BenchAdd):
        registry.register(cls)
    registry.register(BenchSum, "BenchSum")
    measure("chain", chain(args.nodes), registry, args.repeat)
    measure("fan-in", fan_in(args.nodes), registry, args.repeat)


if __name__ == "__main__":
    main()
