"""ExecutionBlocker: a blocked output stops its consumers, silently or with its message as an error on the
consumer; inside a list output only the blocked entries are skipped (ComfyUI's semantics)."""
import fakes_comfy as fc
import pytest

from engine.events import ListSink
from engine.executor import Executor


@pytest.fixture(autouse=True)
def _clear():
    fc.CALLS.clear()


def _chain(open_, message=""):
    return {"n": {"class_type": "Num", "inputs": {"value": 4}},
            "g": {"class_type": "Gate", "inputs": {"value": ["n", 0], "open": open_, "message": message}},
            "d": {"class_type": "Double", "inputs": {"value": ["g", 0]}},
            "s": {"class_type": "Show", "inputs": {"value": ["d", 0]}},
            "other": {"class_type": "Show", "inputs": {"value": ["n", 0]}}}


def test_open_gate_passes_the_value():
    result = Executor(fc.make_registry()).run(_chain(True))
    assert result.ok and result.outputs["s"] == {"value": [8]}


def test_silent_blocker_skips_every_consumer_without_an_error():
    sink = ListSink()
    result = Executor(fc.make_registry()).run(_chain(False), sink=sink)
    assert result.ok, result.failures
    assert "s" not in result.outputs and result.outputs["other"] == {"value": [4]}
    assert not any(name == "Double" for name, _ in fc.CALLS)
    assert not [e for e in sink.events if e.type == "execution_error"]


def test_blocker_with_message_is_an_error_on_the_consumer_only():
    sink = ListSink()
    result = Executor(fc.make_registry()).run(_chain(False, "no input"), sink=sink)
    assert result.status == "error"
    assert [(f.node_id, f.exception_type, f.message) for f in result.failures] == [
        ("d", "ExecutionBlocked", "Execution Blocked: no input")]
    errors = [e for e in sink.events if e.type == "execution_error"]
    assert [e.node_id for e in errors] == ["d"]  # reported once: what d passes on is silent
    assert "s" not in result.outputs and result.outputs["other"] == {"value": [4]}
    assert not any(name == "Double" for name, _ in fc.CALLS)


def test_only_the_blocked_entries_of_a_list_are_skipped():
    wf = {"l": {"class_type": "ListWithBlocked", "inputs": {"message": ""}},
          "d": {"class_type": "Double", "inputs": {"value": ["l", 0]}},
          "s": {"class_type": "Show", "inputs": {"value": ["d", 0]}}}
    result = Executor(fc.make_registry()).run(wf)
    assert result.ok, result.failures
    assert [c for c in fc.CALLS if c[0] == "Double"] == [("Double", 1), ("Double", 3)]
    assert result.outputs["s"] == {"value": [2, 6]}


def test_a_list_with_a_blocked_entry_blocks_an_input_is_list_node():
    wf = {"l": {"class_type": "ListWithBlocked", "inputs": {"message": ""}},
          "c": {"class_type": "Collect", "inputs": {"value": ["l", 0]}},
          "s": {"class_type": "Show", "inputs": {"value": ["c", 0]}}}
    result = Executor(fc.make_registry()).run(wf)
    assert result.ok and "s" not in result.outputs
    assert not any(name == "Collect" for name, _ in fc.CALLS)


def test_blocked_outputs_are_cached_like_any_other():
    ex = Executor(fc.make_registry())
    ex.run(_chain(False))
    fc.CALLS.clear()
    again = ex.run(_chain(False))
    assert again.ok and "s" not in again.outputs and fc.CALLS == []
