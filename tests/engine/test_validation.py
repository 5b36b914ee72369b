"""Validation pins every ComfyUI error code, reports all problems at once, and names node, input, value."""
import pytest
from fakes import chain

from engine.workflow import API_WORKFLOW_SCHEMA, validate_prompt


def codes(report):
    return sorted((nid, e["type"]) for nid, entry in report.node_errors.items() for e in entry["errors"])


def test_valid_chain_is_ok_and_ordered(registry):
    report = validate_prompt(chain(3), registry)
    assert report.ok and report.error is None and report.outputs == ["out"]
    order = report.workflow.order
    assert order.index("0") < order.index("1") < order.index("3") < order.index("out")


def test_unknown_class_is_invalid_prompt_and_every_unknown_is_listed(registry):
    wf = chain(1)
    wf["x"] = {"class_type": "Nope", "inputs": {}}
    wf["y"] = {"class_type": "AlsoNope", "inputs": {}}
    report = validate_prompt(wf, registry)
    assert report.error["type"] == "invalid_prompt"
    assert "Nope does not exist" in report.error["message"]
    assert set(report.node_errors) == {"x", "y"}


def test_missing_class_type_and_non_object_node(registry):
    report = validate_prompt({"1": {"inputs": {}}, "2": 5}, registry)
    assert report.error["type"] == "invalid_prompt"
    assert set(report.node_errors) == {"1", "2"}


def test_not_an_object(registry):
    assert validate_prompt([1, 2], registry).error["type"] == "invalid_prompt"


def test_no_output_node(registry):
    report = validate_prompt({"1": {"class_type": "Const", "inputs": {"value": 1}}}, registry)
    assert report.error["type"] == "prompt_no_outputs"
    assert report.response()["node_errors"] == {}


def test_all_problems_are_collected_with_comfyui_codes(registry):
    wf = {
        "c": {"class_type": "Const", "inputs": {"value": 5000}},             # above max
        "d": {"class_type": "Const", "inputs": {"value": -5000}},            # below min
        "a": {"class_type": "Add", "inputs": {"b": 1}},                      # a missing
        "s": {"class_type": "Scale", "inputs": {"x": ["t", 0], "factor": "abc", "mode": "pow",
                                                 "enabled": True}},          # mismatch, bad float, combo
        "t": {"class_type": "Text", "inputs": {"text": "hi"}},
        "l": {"class_type": "Add", "inputs": {"a": ["zz", 0], "b": 2}},      # link to missing node
        "m": {"class_type": "Add", "inputs": {"a": ["c", 3], "b": 2}},       # missing output index
        "n": {"class_type": "Add", "inputs": {"a": [1, 2, 3], "b": 2}},      # malformed link
        "o1": {"class_type": "Sink", "inputs": {"value": ["c", 0]}},
        "o2": {"class_type": "Sink", "inputs": {"value": ["d", 0]}},
        "o3": {"class_type": "Sink", "inputs": {"value": ["a", 0]}},
        "o4": {"class_type": "Sink", "inputs": {"value": ["s", 0]}},
        "o5": {"class_type": "Sink", "inputs": {"value": ["l", 0]}},
        "o6": {"class_type": "Sink", "inputs": {"value": ["m", 0]}},
        "o7": {"class_type": "Sink", "inputs": {"value": ["n", 0]}},
    }
    report = validate_prompt(wf, registry)
    assert report.error["type"] == "prompt_outputs_failed_validation"
    assert codes(report) == sorted([
        ("c", "value_bigger_than_max"), ("d", "value_smaller_than_min"), ("a", "required_input_missing"),
        ("s", "return_type_mismatch"), ("s", "invalid_input_type"), ("s", "value_not_in_list"),
        ("l", "bad_linked_input"), ("m", "bad_linked_input"), ("n", "bad_linked_input")])
    assert report.node_errors["c"]["dependent_outputs"] == ["o1"]
    assert report.node_errors["c"]["class_type"] == "Const"
    details = {e["type"]: e["details"] for entry in report.node_errors.values() for e in entry["errors"]}
    assert details["value_bigger_than_max"] == "Const #c: value: 5000 is above the maximum 1000"
    assert "'pow'" in details["value_not_in_list"] and "mode" in details["value_not_in_list"]
    assert "expects FLOAT,INT" in details["return_type_mismatch"] and "STRING" in details["return_type_mismatch"]
    err = report.node_errors["s"]["errors"][0]
    assert set(err) == {"type", "message", "details", "extra_info"}


def test_partial_validity_keeps_good_outputs(registry):
    wf = chain(2)
    wf["bad"] = {"class_type": "Const", "inputs": {"value": 99999}}
    wf["o2"] = {"class_type": "Sink", "inputs": {"value": ["bad", 0]}}
    report = validate_prompt(wf, registry)
    assert report.ok and report.outputs == ["out"]
    assert list(report.node_errors) == ["bad"]


@pytest.mark.parametrize("value,expected", [("false", False), ("False", False), ("0", False), (0, False),
                                            ("true", True), (1, True), (True, True)])
def test_boolean_coercion_false_string_is_false(registry, value, expected):
    wf = {"s": {"class_type": "Scale", "inputs": {"x": ["c", 0], "factor": 2, "mode": "mul", "enabled": value}},
          "c": {"class_type": "Const", "inputs": {"value": 3}},
          "o": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    report = validate_prompt(wf, registry)
    assert report.ok
    assert report.workflow.nodes["s"].constants["enabled"] is expected


def test_int_and_float_coercion(registry):
    wf = {"c": {"class_type": "Const", "inputs": {"value": "12"}},
          "s": {"class_type": "Scale", "inputs": {"x": ["c", 0], "factor": "2.5", "mode": "mul", "enabled": True}},
          "o": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    report = validate_prompt(wf, registry)
    assert report.ok
    assert report.workflow.nodes["c"].constants["value"] == 12
    assert report.workflow.nodes["s"].constants["factor"] == 2.5
    wf["c"]["inputs"]["value"] = 2.5
    assert codes(validate_prompt(wf, registry)) == [("c", "invalid_input_type")]
    wf["c"]["inputs"]["value"] = 7.0
    assert validate_prompt(wf, registry).workflow.nodes["c"].constants["value"] == 7


def test_string_widget_rejects_objects_and_value_wrapper_unwraps(registry):
    wf = {"t": {"class_type": "Text", "inputs": {"text": {"a": 1}}},
          "o": {"class_type": "Sink", "inputs": {"value": ["t", 0]}}}
    assert codes(validate_prompt(wf, registry)) == [("t", "invalid_input_type")]
    wf["t"]["inputs"]["text"] = {"__value__": "wrapped"}
    assert validate_prompt(wf, registry).workflow.nodes["t"].constants["text"] == "wrapped"


def test_new_combo_form_is_checked(registry):
    wf = {"c": {"class_type": "Combo2", "inputs": {"choice": "z"}},
          "o": {"class_type": "Sink", "inputs": {"value": ["c", 0]}}}
    assert codes(validate_prompt(wf, registry)) == [("c", "value_not_in_list")]


def test_validate_inputs_custom_failure_and_range_checks_skipped(registry):
    wf = {"e": {"class_type": "Even", "inputs": {"n": 3}}, "o": {"class_type": "Sink", "inputs": {"value": ["e", 0]}}}
    report = validate_prompt(wf, registry)
    assert codes(report) == [("e", "custom_validation_failed")]
    assert "3 is odd" in report.node_errors["e"]["errors"][0]["details"]
    wf["e"]["inputs"]["n"] = 12  # above max 10, but VALIDATE_INPUTS names n, so only it judges (as ComfyUI)
    assert validate_prompt(wf, registry).ok


def test_cycle_is_reported_on_every_node_of_the_cycle(registry):
    wf = {"a": {"class_type": "Add", "inputs": {"a": ["b", 0], "b": 1}},
          "b": {"class_type": "Add", "inputs": {"a": ["a", 0], "b": 1}},
          "o": {"class_type": "Sink", "inputs": {"value": ["b", 0]}}}
    report = validate_prompt(wf, registry)
    assert codes(report) == [("a", "dependency_cycle"), ("b", "dependency_cycle")]


def test_ignores_meta_node_level_is_changed_and_undeclared_constants(registry):
    wf = chain(1)
    wf["0"]["_meta"] = {"title": "x"}
    wf["0"]["is_changed"] = ["abc"]
    wf["0"]["inputs"]["choose file to upload"] = "image"
    assert validate_prompt(wf, registry).ok


def test_any_type_and_unions_match(registry):
    wf = {"c": {"class_type": "Const", "inputs": {"value": 1}},
          "s": {"class_type": "Scale", "inputs": {"x": ["c", 0], "factor": 1, "mode": "mul", "enabled": True}},
          "o": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    assert validate_prompt(wf, registry).ok  # INT into "FLOAT,INT"; FLOAT into "*"


def test_partial_execution_targets(registry):
    wf = chain(2)
    wf["o2"] = {"class_type": "Sink", "inputs": {"value": ["0", 0]}}
    report = validate_prompt(wf, registry, targets=["o2"])
    assert report.outputs == ["o2"] and set(report.workflow.nodes) == {"0", "o2"}
    assert validate_prompt(wf, registry, targets=["missing"]).error["type"] == "invalid_prompt"


def test_ten_thousand_node_chain_validates_without_recursion(registry):
    report = validate_prompt(chain(10_000), registry)
    assert report.ok and len(report.workflow.order) == 10_002


def test_json_schema_agrees_with_the_engine_on_shape(registry):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(API_WORKFLOW_SCHEMA)
    good, bad = chain(1), {"1": {"inputs": {}}}
    assert validator.is_valid(good) and validate_prompt(good, registry).ok
    assert not validator.is_valid(bad) and validate_prompt(bad, registry).error["type"] == "invalid_prompt"
