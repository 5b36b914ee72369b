"""Node expansion: a node returning {"result", "expand"} adds its graph to the running plan (validated,
cached, executed like prompt nodes); recursion is iterative; a cycle through expansion fails that node."""
import sys

import fakes_comfy as fc
import pytest

from engine.events import ListSink
from engine.executor import Executor


@pytest.fixture(autouse=True)
def _clear():
    fc.CALLS.clear()


def _loop(n):
    return {"l": {"class_type": "CountLoop", "inputs": {"i": 0, "n": n, "acc": 0}},
            "s": {"class_type": "Show", "inputs": {"value": ["l", 0]}}}


def test_expanded_outputs_feed_the_expanding_nodes_outputs():
    result = Executor(fc.make_registry()).run(_loop(5))
    assert result.ok, result.failures
    assert result.outputs["s"] == {"value": [sum(range(5))]}


def test_a_for_loop_of_10000_iterations_runs_without_python_recursion():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # any recursion per iteration would blow this
    try:
        result = Executor(fc.make_registry()).run(_loop(10_000))
    finally:
        sys.setrecursionlimit(limit)
    assert result.ok, result.failures[:1]
    assert result.outputs["s"] == {"value": [sum(range(10_000))]}
    assert len(result.executed) == 2 * 10_000 + 2
    assert max(len(nid) for nid in result.executed) < 20  # ephemeral ids stay short however deep


def test_expanded_nodes_run_with_events_naming_the_expanding_node():
    sink = ListSink()
    wf = {"e": {"class_type": "ExpandShow", "inputs": {"value": 3}},
          "s": {"class_type": "Show", "inputs": {"value": ["e", 0]}}}
    result = Executor(fc.make_registry()).run(wf, sink=sink)
    assert result.ok, result.failures
    assert result.outputs["s"] == {"value": [6]}
    executing = [(e.node, e.display_node) for e in sink.events if e.type == "executing" and e.node]
    ephemeral = [(n, d) for n, d in executing if n not in wf]
    assert len(ephemeral) == 2 and all(d == "e" and n.startswith("e.") for n, d in ephemeral)
    shown = [e for e in sink.events if e.type == "executed" and e.node not in wf]
    assert [(e.display_node, e.output) for e in shown] == [("e", {"value": [6]})]


def test_expanded_results_are_cached_across_runs():
    ex = Executor(fc.make_registry())
    ex.run(_loop(50))
    again = ex.run(_loop(50))
    assert again.ok and again.executed == [] and again.outputs["s"] == {"value": [sum(range(50))]}
    assert again.cached == ["l", "s"]


def test_identical_expanded_nodes_share_one_result():
    wf = {"a": {"class_type": "ExpandShow", "inputs": {"value": 3}},
          "b": {"class_type": "ExpandShow", "inputs": {"value": 3}},
          "sa": {"class_type": "Show", "inputs": {"value": ["a", 0]}},
          "sb": {"class_type": "Show", "inputs": {"value": ["b", 0]}}}
    result = Executor(fc.make_registry()).run(wf)
    assert result.ok and result.outputs["sa"] == result.outputs["sb"] == {"value": [6]}
    assert [c for c in fc.CALLS if c[0] == "Double"] == [("Double", 3)]


@pytest.mark.parametrize("mode", ["self", "pair"])
def test_a_cycle_through_expansion_fails_the_expanding_node(mode):
    wf = {"c": {"class_type": "ExpandCycle", "inputs": {"mode": mode}},
          "s": {"class_type": "Show", "inputs": {"value": ["c", 0]}},
          "n": {"class_type": "Num", "inputs": {"value": 1}},
          "other": {"class_type": "Show", "inputs": {"value": ["n", 0]}}}
    result = Executor(fc.make_registry()).run(wf)
    assert result.status == "error"
    assert [(f.node_id, f.exception_type) for f in result.failures] == [("c", "ExpansionError")]
    assert "cycle" in result.failures[0].message
    assert result.outputs == {"other": {"value": [1]}}  # the independent branch still ran


def test_dynprompt_knows_ephemeral_nodes_and_their_parents():
    from comfy_execution.graph import DynamicPrompt
    wf = {"x": {"class_type": "ExpandWho", "inputs": {"tag": 7}},
          "s": {"class_type": "Show", "inputs": {"value": ["x", 0]}}}
    result = Executor(fc.make_registry()).run(wf)
    assert result.ok, result.failures
    assert result.outputs["s"] == {"value": ["7"]}
    [(_, (uid, real, parent, display, cls, has, listed, original))] = [c for c in fc.CALLS if c[0] == "WhoAmI"]
    assert uid.startswith("x.") and (real, parent, display, cls) == ("x", "x", "x", "WhoAmI")
    assert has and listed and original == ["s", "x"]
    standalone = DynamicPrompt({"1": {"class_type": "Num", "inputs": {}}})
    assert standalone.get_real_node_id("1") == "1" and standalone.get_display_node_id("1") == "1"
    with pytest.raises(KeyError):
        standalone.get_node("2")
