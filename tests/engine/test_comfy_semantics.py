"""ComfyUI's execution rules for lazy inputs, async hooks and non-widget constants (fake V1 nodes)."""
import asyncio

import fakes_comfy as fc
import pytest

from engine.executor import Executor


@pytest.fixture(autouse=True)
def _clear():
    fc.CALLS.clear()


def _run(wf, **kw):
    return Executor(fc.make_registry()).run(wf, **kw)


def test_lazy_input_not_requested_is_passed_as_none():
    wf = {"n": {"class_type": "Num", "inputs": {"value": 5}},
          "l": {"class_type": "LazyNeverAsks", "inputs": {"x": ["n", 0], "y": ["n", 0]}},
          "s": {"class_type": "Show", "inputs": {"value": ["l", 0]}}}
    result = _run(wf)
    assert result.ok, result.failures
    assert result.outputs["s"] == {"value": ["x=None y=None"]}
    assert ("Num", 5) not in fc.CALLS  # never evaluated


def test_async_check_lazy_status_is_awaited_and_picks_the_branch():
    wf = {"a": {"class_type": "Num", "inputs": {"value": 1}},
          "b": {"class_type": "Num", "inputs": {"value": 2}},
          "w": {"class_type": "AsyncLazySwitch", "inputs": {"pick_a": False, "a": ["a", 0], "b": ["b", 0]}},
          "s": {"class_type": "Show", "inputs": {"value": ["w", 0]}}}
    result = _run(wf)
    assert result.ok and result.outputs["s"] == {"value": [2]}
    assert ("AsyncLazySwitch", (None, 2)) in fc.CALLS and ("Num", 1) not in fc.CALLS


def test_raising_check_lazy_status_is_an_error_on_that_node():
    wf = {"a": {"class_type": "Num", "inputs": {"value": 1}},
          "r": {"class_type": "LazyRaises", "inputs": {"a": ["a", 0]}},
          "s": {"class_type": "Show", "inputs": {"value": ["r", 0]}}}
    result = _run(wf)
    assert result.status == "error"
    assert [(f.node_id, f.message) for f in result.failures] == [("r", "lazy check broke")]
    assert not any(c[0] == "LazyRaises" for c in fc.CALLS) and "s" in result.blocked


def test_constants_of_non_widget_types_pass_through_unchanged():
    wf = {"t": {"class_type": "TakesAnything", "inputs": {"anything": {"k": [1, 2]}, "flag": True,
                                                          "mixed": 0.5}},
          "s": {"class_type": "Show", "inputs": {"value": ["t", 0]}}}
    result = _run(wf)
    assert result.ok, result.validation.response()
    assert result.outputs["s"] == {"value": [repr(({"k": [1, 2]}, True, 0.5))]}


def test_validate_inputs_decides_non_widget_constants():
    wf = {"t": {"class_type": "TakesAnything", "inputs": {"anything": "reject me", "flag": 1, "mixed": 2}},
          "s": {"class_type": "Show", "inputs": {"value": ["t", 0]}}}
    report = _run(wf).validation
    err = report.node_errors["t"]["errors"][0]
    assert err["type"] == "custom_validation_failed" and "must not be 'reject me'" in err["details"]


def test_raw_list_constant_for_non_widget_type_is_still_a_bad_link():
    wf = {"t": {"class_type": "TakesAnything", "inputs": {"anything": [1, 2, 3], "flag": 1, "mixed": 2}},
          "s": {"class_type": "Show", "inputs": {"value": ["t", 0]}}}
    report = _run(wf).validation
    assert report.node_errors["t"]["errors"][0]["type"] == "bad_linked_input"


@pytest.mark.parametrize("value,ok", [(4, True), (3, False)])
def test_async_validate_inputs_is_awaited_and_its_string_is_the_error(value, ok):
    wf = {"v": {"class_type": "AsyncValidated", "inputs": {"value": value}},
          "s": {"class_type": "Show", "inputs": {"value": ["v", 0]}}}
    result = _run(wf)
    assert result.ok is ok
    if not ok:
        err = result.validation.node_errors["v"]["errors"][0]
        assert err["type"] == "custom_validation_failed" and "value 3 is odd" in err["details"]


def test_async_validate_inputs_works_when_validation_runs_inside_an_event_loop():
    wf = {"v": {"class_type": "AsyncValidated", "inputs": {"value": 3}},
          "s": {"class_type": "Show", "inputs": {"value": ["v", 0]}}}

    async def inside():
        return Executor(fc.make_registry()).validate(wf)
    report = asyncio.run(inside())
    assert "value 3 is odd" in report.node_errors["v"]["errors"][0]["details"]
