"""An unknown class_type makes the prompt invalid (ComfyUI's invalid_prompt) without hiding the rest of
the graph's problems, and the message suggests the nearest registered names."""
from fakes import chain

from engine.workflow import validate_prompt


def test_unknown_class_still_validates_the_rest_and_suggests_the_nearest_name(registry):
    wf = chain(2)
    wf["1"]["class_type"] = "Ad"            # a typo of Add, feeding node 2
    wf["2"]["inputs"]["b"] = "x"            # a bad constant on a node that links to the unknown one
    wf["0"]["inputs"]["value"] = "nope"     # a problem upstream of the unknown node
    wf["lonely"] = {"class_type": "Sink", "inputs": {}}
    report = validate_prompt(wf, registry)
    body = report.response()
    assert body["error"]["type"] == "invalid_prompt"
    assert body["error"]["message"] == "Cannot execute because node Ad does not exist."
    assert set(body["node_errors"]) == {"0", "1", "2", "lonely"}
    (unknown,) = body["node_errors"]["1"]["errors"]
    assert unknown["type"] == "invalid_prompt" and "did you mean Add?" in unknown["details"]
    # The link from node 2 into the unknown node is not a second error.
    assert [e["type"] for e in body["node_errors"]["2"]["errors"]] == ["invalid_input_type"]
    assert not report.ok and report.workflow is None


def test_text_prints_the_unknown_class_once_and_readably(registry):
    wf = chain(1)
    wf["1"]["class_type"] = "Sinc"
    text = validate_prompt(wf, registry).text()
    assert text.count("Sinc does not exist") == 1 and ".:" not in text, text
    assert "did you mean Sink" in text


def test_unknown_class_with_no_near_name_has_no_suggestion(registry):
    wf = chain(1)
    wf["x"] = {"class_type": "Zzzzzzzz", "inputs": {}}
    details = validate_prompt(wf, registry).node_errors["x"]["errors"][0]["details"]
    assert "did you mean" not in details and "'Zzzzzzzz' is not a registered node type" in details
