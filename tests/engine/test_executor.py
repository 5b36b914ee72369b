"""Execution: only what is needed and changed runs; lists, lazy branches, async, failures, cancel, events."""
import threading
import time

import fakes
from fakes import CALLS, chain

from engine import CancelToken
from engine.cache import OutputCache, estimate_size
from engine.events import ListSink
from engine.executor import Executor


def sampler_like():
    """Const(seed) -> Add -> Scale -> Sink, with a second branch Text -> Sink."""
    return {
        "seed": {"class_type": "Const", "inputs": {"value": 1}},
        "base": {"class_type": "Const", "inputs": {"value": 10}},
        "add": {"class_type": "Add", "inputs": {"a": ["base", 0], "b": 5}},
        "mix": {"class_type": "Add", "inputs": {"a": ["add", 0], "b": ["seed", 0]}},
        "out": {"class_type": "Sink", "inputs": {"value": ["mix", 0]}},
        "txt": {"class_type": "Text", "inputs": {"text": "hello"}},
        "out2": {"class_type": "Sink", "inputs": {"value": ["txt", 0]}},
    }


def test_runs_and_returns_ui_outputs(registry):
    result = Executor(registry).run(sampler_like())
    assert result.ok
    assert result.outputs == {"out": {"value": [16]}, "out2": {"value": ["hello"]}}


def test_changed_seed_reruns_only_the_nodes_below_it(registry):
    ex = Executor(registry)
    wf = sampler_like()
    ex.run(wf)
    CALLS.clear()
    wf["seed"]["inputs"]["value"] = 2
    result = ex.run(wf)
    assert sorted(result.executed) == ["mix", "out", "seed"]
    assert sorted(result.cached) == ["add", "base", "out2", "txt"]
    assert result.outputs["out"] == {"value": [17]}
    assert result.outputs["out2"] == {"value": ["hello"]}  # cached ui is still reported


def test_unchanged_rerun_executes_nothing(registry):
    ex = Executor(registry)
    ex.run(sampler_like())
    CALLS.clear()
    result = ex.run(sampler_like())
    assert CALLS == [] and result.executed == [] and result.ok


def test_same_subgraph_under_other_ids_runs_once(registry):
    wf = {"a1": {"class_type": "Const", "inputs": {"value": 4}},
          "a2": {"class_type": "Const", "inputs": {"value": 4}},
          "b1": {"class_type": "Add", "inputs": {"a": ["a1", 0], "b": 1}},
          "b2": {"class_type": "Add", "inputs": {"a": ["a2", 0], "b": 1}},
          "o": {"class_type": "Sink", "inputs": {"value": ["b1", 0]}},
          "p": {"class_type": "Sink", "inputs": {"value": ["b2", 0]}}}
    result = Executor(registry).run(wf)
    assert CALLS.count("Const") == 1 and CALLS.count("Add") == 1
    assert result.outputs["o"] == result.outputs["p"] == {"value": [5]}


def test_not_idempotent_and_unique_id_are_not_shared(registry):
    wf = {"r1": {"class_type": "Random", "inputs": {"x": 1}}, "r2": {"class_type": "Random", "inputs": {"x": 1}},
          "c1": {"class_type": "Combo2", "inputs": {"choice": "x"}},
          "c2": {"class_type": "Combo2", "inputs": {"choice": "x"}},
          "o1": {"class_type": "Sink", "inputs": {"value": ["r1", 0]}},
          "o2": {"class_type": "Sink", "inputs": {"value": ["r2", 0]}},
          "o3": {"class_type": "Sink", "inputs": {"value": ["c1", 0]}},
          "o4": {"class_type": "Sink", "inputs": {"value": ["c2", 0]}}}
    result = Executor(registry).run(wf)
    assert CALLS.count("Random") == 2 and CALLS.count("Combo2") == 2
    assert result.outputs["o3"] == {"value": ["x@c1"]} and result.outputs["o4"] == {"value": ["x@c2"]}


def is_changed_wf():
    return {"c": {"class_type": "Changing", "inputs": {"x": 3}},
            "a": {"class_type": "Add", "inputs": {"a": ["c", 0], "b": 1}},
            "o": {"class_type": "Sink", "inputs": {"value": ["a", 0]}}}


def test_is_changed_fingerprint_controls_reruns(registry):
    ex = Executor(registry)
    ex.run(is_changed_wf())
    CALLS.clear()
    ex.run(is_changed_wf())
    assert CALLS == []
    fakes.Changing.VERSION["v"] = 1
    ex.run(is_changed_wf())
    assert CALLS == ["Changing", "Add", "Sink"]


def test_is_changed_nan_or_raising_means_always_rerun(registry):
    ex = Executor(registry)
    fakes.Changing.VERSION["nan"] = True
    ex.run(is_changed_wf())
    CALLS.clear()
    ex.run(is_changed_wf())
    assert CALLS == ["Changing", "Add", "Sink"]
    fakes.Changing.VERSION.update(nan=False)
    fakes.Changing.VERSION["raise"] = True
    CALLS.clear()
    ex.run(is_changed_wf())
    ex.run(is_changed_wf())
    assert CALLS.count("Changing") == 2


def test_output_is_list_maps_downstream_and_input_is_list_gets_whole_list(registry):
    wf = {"r": {"class_type": "Range", "inputs": {"n": 4}},
          "a": {"class_type": "Add", "inputs": {"a": ["r", 0], "b": 10}},      # mapped 4 times
          "s": {"class_type": "SumList", "inputs": {"values": ["a", 0]}},     # once, whole list
          "o": {"class_type": "Sink", "inputs": {"value": ["a", 0]}},
          "o2": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    result = Executor(registry).run(wf)
    assert CALLS.count("Add") == 4 and CALLS.count("SumList") == 1
    assert result.outputs["o"] == {"value": [10, 11, 12, 13]}
    assert result.outputs["o2"] == {"value": [46]}


def test_shorter_list_repeats_its_last_item(registry):
    wf = {"r": {"class_type": "Range", "inputs": {"n": 3}}, "r2": {"class_type": "Range", "inputs": {"n": 1}},
          "a": {"class_type": "Add", "inputs": {"a": ["r", 0], "b": ["r2", 0]}},
          "o": {"class_type": "Sink", "inputs": {"value": ["a", 0]}}}
    assert Executor(registry).run(wf).outputs["o"] == {"value": [0, 1, 2]}


def test_lazy_switch_evaluates_only_the_chosen_branch(registry):
    wf = {"a": {"class_type": "Const", "inputs": {"value": 1}},
          "b": {"class_type": "Fail", "inputs": {"x": 2}},
          "s": {"class_type": "Switch", "inputs": {"pick_a": True, "a": ["a", 0], "b": ["b", 0]}},
          "o": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    result = Executor(registry).run(wf)
    assert result.ok and result.outputs["o"] == {"value": [1]}
    assert "Fail" not in CALLS
    wf["s"]["inputs"]["pick_a"] = False
    result = Executor(registry).run(wf)
    assert result.status == "error" and result.failures[0].node_id == "b"


def test_failure_stops_only_its_descendants(registry):
    wf = {"c": {"class_type": "Const", "inputs": {"value": 1}},
          "f": {"class_type": "Fail", "inputs": {"x": ["c", 0]}},
          "after": {"class_type": "Add", "inputs": {"a": ["f", 0], "b": 1}},
          "o1": {"class_type": "Sink", "inputs": {"value": ["after", 0]}},
          "ok": {"class_type": "Add", "inputs": {"a": ["c", 0], "b": 2}},
          "o2": {"class_type": "Sink", "inputs": {"value": ["ok", 0]}}}
    sink = ListSink()
    result = Executor(registry).run(wf, sink=sink)
    assert result.status == "error"
    assert result.outputs == {"o2": {"value": [3]}}
    assert sorted(result.blocked) == ["after", "o1"]
    (failure,) = result.failures
    assert (failure.node_id, failure.class_type, failure.exception_type) == ("f", "Fail", "ValueError")
    assert failure.message == "cannot handle 1" and failure.inputs == {"x": "1"}
    assert any("raise ValueError" in line for line in failure.traceback)
    error = [e for e in sink.events if e.type == "execution_error"][0].data()
    assert error["node_id"] == "f" and error["current_inputs"] == {"x": ["1"]}
    assert sink.types()[-1] == "execution_error"


def test_failed_node_is_not_cached(registry):
    ex = Executor(registry)
    wf = {"f": {"class_type": "Fail", "inputs": {"x": 1}}, "o": {"class_type": "Sink", "inputs": {"value": ["f", 0]}}}
    ex.run(wf)
    ex.run(wf)
    assert CALLS.count("Fail") == 2


def test_event_order_matches_comfyui(registry):
    sink = ListSink()
    ex = Executor(registry)
    wf = {"c": {"class_type": "Const", "inputs": {"value": 1}},
          "s": {"class_type": "Slow", "inputs": {"x": ["c", 0], "steps": 2, "delay": 0}},
          "o": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    ex.run(wf, run_id="p1", sink=sink)
    assert sink.types() == ["execution_start", "execution_cached", "executing", "executing", "progress", "progress",
                            "executing", "executed", "execution_success"]
    assert [e.data().get("node") for e in sink.events if e.type == "executing"] == ["c", "s", "o"]
    progress = [e.data() for e in sink.events if e.type == "progress"]
    assert progress[1] == {"prompt_id": "p1", "node": "s", "value": 2, "max": 2}
    assert all(e.prompt_id == "p1" for e in sink.events)
    sink2 = ListSink()
    ex.run(wf, run_id="p2", sink=sink2)
    assert sink2.types() == ["execution_start", "execution_cached", "executed", "execution_success"]
    assert sorted(sink2.events[1].data()["nodes"]) == ["c", "o", "s"]
    assert "timestamp" in sink2.events[0].data()


def test_cancel_takes_effect_at_the_next_progress_report(registry):
    ex = Executor(registry)
    wf = {"c": {"class_type": "Const", "inputs": {"value": 1}},
          "s": {"class_type": "Slow", "inputs": {"x": ["c", 0], "steps": 1000, "delay": 0.01}},
          "o": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    sink = ListSink()
    timer = threading.Timer(0.15, lambda: ex.cancel("run-1"))
    timer.start()
    start = time.monotonic()
    result = ex.run(wf, run_id="run-1", sink=sink)
    assert time.monotonic() - start < 2.0
    assert result.status == "interrupted" and result.interrupted_at == "s"
    assert sink.types()[-1] == "execution_interrupted"
    assert sink.events[-1].data()["node_type"] == "Slow"
    steps = [e for e in sink.events if e.type == "progress"]
    assert 0 < len(steps) < 1000
    assert ex.cancel("run-1") is False  # no longer running


def test_cancel_before_start_runs_nothing(registry):
    token = CancelToken()
    token.cancel()
    result = Executor(registry).run(chain(3), cancel=token)
    assert result.status == "interrupted" and CALLS == []


def test_independent_async_nodes_run_concurrently(registry):
    wf = {"c": {"class_type": "Const", "inputs": {"value": 1}}}
    for i in range(5):
        wf[f"w{i}"] = {"class_type": "AsyncWait", "inputs": {"x": ["c", 0], "delay": 0.3}}
        wf[f"o{i}"] = {"class_type": "Sink", "inputs": {"value": [f"w{i}", 0]}}
    start = time.monotonic()
    result = Executor(registry).run(wf)
    elapsed = time.monotonic() - start
    assert result.ok and CALLS.count("AsyncWait") == 5
    assert elapsed < 1.0, f"5 x 0.3 s async waits took {elapsed:.2f} s: not concurrent"


def test_ten_thousand_node_chain_runs(registry):
    result = Executor(registry).run(chain(10_000))
    assert result.ok and result.outputs["out"] == {"value": [10_001]}


def test_invalid_workflow_is_not_run(registry):
    result = Executor(registry).run({"x": {"class_type": "Nope"}})
    assert result.status == "invalid" and result.validation.error["type"] == "invalid_prompt"


def test_lru_budget_evicts_least_recently_used():
    cache = OutputCache("lru", budget_bytes=250)
    cache.put("a", [["x" * 100]], None)
    cache.put("b", [["y" * 100]], None)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", [["z" * 100]], None)
    assert "a" in cache and "c" in cache and "b" not in cache
    assert cache.size_bytes == 200


def test_cache_policy_none_keeps_nothing_across_runs(registry):
    ex = Executor(registry, cache_policy="none")
    ex.run(chain(2))
    CALLS.clear()
    ex.run(chain(2))
    assert CALLS.count("Add") == 2


def test_size_estimate_counts_shared_storage_once():
    torch = __import__("torch")
    t = torch.zeros(1000, dtype=torch.float32)
    assert estimate_size([t, t[10:], {"k": t}]) == 4000
    assert estimate_size([torch.zeros(10), torch.zeros(10)]) == 80


def test_node_never_sees_a_mutation_of_cached_output_shared(registry):
    class Holder:
        pass
    ex = Executor(registry)
    r1 = ex.run(chain(1))
    r2 = ex.run(chain(1))
    assert r1.values["1"] is r2.values["1"]  # shared, not copied: nodes must not mutate inputs
    assert Holder
