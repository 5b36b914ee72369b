"""ComfyUI's frontend-only nodes in the editor: every shared ComfyUI workflow opens without missing node
types and converts exactly as the server's converter does; Note, Reroute and PrimitiveNode behave as
in ComfyUI (shown, resolved away, inlined); muted and bypassed nodes are dropped and rewired."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from web_ui import (
    add_node_by_search,
    connect,
    find_node,
    history_entry,
    node_menu,
    open_workflow_file,
    pick_combo,
    post_json,
    set_number,
    to_screen,
    wait_for_image_on,
    wait_idle,
    widget_value,
)

from tests.workflow_pairs import OWN, SHARED, expected_inputs, load_pair, names, needs_shared, pair_params


def without_meta(prompt: dict) -> dict:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}


def open_pair(editor, folder: Path, name: str) -> tuple[dict, dict]:
    ui, api = load_pair(folder, name)
    open_workflow_file(editor.page, folder / f"{name}.ui.json", len(ui["nodes"]))
    return ui, api


def browser_prompt(page) -> dict:
    return page.evaluate("app.graphToPrompt()")


def server_convert(editor, workflow: dict) -> dict:
    return post_json(editor.url + "/api/workflow/convert", workflow)["prompt"]


@needs_shared
def test_every_shared_workflow_is_here():
    assert len(names(SHARED)) == 10, names(SHARED)


@pytest.mark.parametrize(("folder", "name"), pair_params())
def test_comfyui_workflow_opens_and_converts_like_the_server(editor, folder, name):
    page = editor.page
    ui, twin = open_pair(editor, folder, name)
    assert page.evaluate("app.graph._nodes.filter(n => n.has_errors).map(n => n.type)") == []
    toasts = page.locator("#toasts .toast").all_inner_texts()
    assert not [t for t in toasts if "Missing" in t], toasts
    assert sorted(page.evaluate("app.graph._nodes.map(n => n.type)")) == sorted(n["type"] for n in ui["nodes"])
    got = browser_prompt(page)
    expected = without_meta(server_convert(editor, ui))
    assert without_meta(got["output"]) == expected
    # What the editor would save converts to the same prompt again.
    assert without_meta(server_convert(editor, got["workflow"])) == expected
    # And both are ComfyUI's own export of the same graph.
    assert expected == expected_inputs(name, twin)
    assert editor.errors == []


def note_text(page, node_id: int):
    loc = page.locator(f"textarea.dg-note[data-node='{node_id}']")
    return loc.is_visible(), loc.input_value()


@needs_shared
def test_notes_show_their_text_and_stay_out_of_the_prompt(editor):
    page = editor.page
    ui, _ = open_pair(editor, SHARED, "sdxl_base_refiner")
    page.evaluate("app.fitView(); app.canvas.setDirty(true, true)")
    page.wait_for_timeout(100)
    editor.shot("20-sdxl-base-refiner")
    notes = [n for n in ui["nodes"] if n["type"] == "Note"]
    visible, text = note_text(page, 48)
    assert visible and text == next(n for n in notes if n["id"] == 48)["widgets_values"][0]
    # Zoomed in on the step controls: two primitives and their note.
    page.evaluate("app.canvas.ds.scale = 1; app.canvas.ds.offset = [-900, -650]; app.canvas.setDirty(true, true)")
    page.wait_for_timeout(100)
    editor.shot("21-sdxl-step-control")
    output = browser_prompt(page)["output"]
    assert len(output) == 11 and {v["class_type"] for v in output.values()}.isdisjoint({"Note", "PrimitiveNode"})

    # A note added by hand: typed text is kept in the workflow, never sent.
    before = output
    note = add_node_by_search(page, "Note", (1500, 1100))
    assert page.evaluate("(id) => app.graph.getNodeById(id).type", note) == "Note"
    page.evaluate("(id) => app.canvas.centerOnNode(app.graph.getNodeById(id))", note)
    page.wait_for_selector(f"textarea.dg-note[data-node='{note}']", state="visible")
    page.locator(f"textarea.dg-note[data-node='{note}']").fill("remember the refiner")
    converted = browser_prompt(page)
    assert converted["output"] == before
    saved = next(n for n in converted["workflow"]["nodes"] if n["id"] == note)
    assert saved["widgets_values"] == ["remember the refiner"]
    assert without_meta(server_convert(editor, converted["workflow"])) == without_meta(before)
    markdown = page.evaluate("""() => { const n = app.addNode("MarkdownNote", [1500, 1350]);
      n.widgets[0].value = "# Steps\\n*25* in all"; return n.id; }""")
    converted = browser_prompt(page)
    assert converted["output"] == before
    saved = next(n for n in converted["workflow"]["nodes"] if n["id"] == markdown)
    assert saved["type"] == "MarkdownNote" and saved["widgets_values"] == ["# Steps\n*25* in all"]
    assert editor.errors == []


def slot_type(page, node_id: int, output: int = 0) -> str:
    return page.evaluate("([id, i]) => app.graph.getNodeById(id).outputs[i].type", [node_id, output])


def input_link(page, node_id: int, name: str):
    return page.evaluate("([id, name]) => { const n = app.graph.getNodeById(id);"
                         " return n.inputs[n.findInputSlot(name)].link; }", [node_id, name])


def test_reroute_chain_adopts_the_type_and_resolves_to_the_original_link(editor, tmp_path):
    page = editor.page
    ckpt, sampler = find_node(page, "CheckpointLoaderSimple"), find_node(page, "KSampler")
    first = add_node_by_search(page, "Reroute", (1050, 620))
    second = add_node_by_search(page, "Reroute", (1250, 620))
    assert slot_type(page, first) == "*"
    connect(page, ckpt, 0, first, 0)
    assert slot_type(page, first) == "MODEL"
    connect(page, first, 0, second, 0)
    connect(page, second, 0, sampler, "model")
    assert slot_type(page, second) == "MODEL"
    origin = page.evaluate("(id) => { const l = app.graph.links[app.graph.getNodeById(id).inputs[0].link];"
                           " return l.origin_id; }", sampler)
    assert origin == second, "the sampler's model now comes through the reroutes"
    # The chain is typed now: a MODEL cannot go into a CLIP input.
    enc = page.evaluate("app.graph._nodes.find(n => n.comfyClass === 'CLIPTextEncode').id")
    link_before = input_link(page, enc, "clip")
    connect(page, second, 0, enc, "clip")
    assert input_link(page, enc, "clip") == link_before
    editor.shot("22-reroute-chain")
    converted = browser_prompt(page)
    assert converted["output"][str(sampler)]["inputs"]["model"] == [str(ckpt), 0]
    assert {v["class_type"] for v in converted["output"].values()}.isdisjoint({"Reroute"})
    assert without_meta(server_convert(editor, converted["workflow"])) == without_meta(converted["output"])
    # The saved chain loads back typed and still resolves.
    saved = tmp_path / "reroutes.json"
    saved.write_text(json.dumps(converted["workflow"]))
    open_workflow_file(page, saved, len(converted["workflow"]["nodes"]))
    assert slot_type(page, second) == "MODEL"
    assert browser_prompt(page)["output"] == converted["output"]
    page.click("#queue-button")
    page.wait_for_function("app.execution.ownPrompts.size > 0")
    wait_idle(page)
    (prompt_id,) = page.evaluate("[...app.execution.ownPrompts]")
    entry = history_entry(editor, prompt_id)
    assert entry["status"]["status_str"] == "success"
    assert entry["prompt"][2][str(sampler)]["inputs"]["model"] == [str(ckpt), 0]
    assert editor.errors == []


def test_primitive_node_drives_two_seeds(editor):
    page = editor.page
    first = find_node(page, "KSampler")
    second = add_node_by_search(page, "KSampler", (1050, 520))
    page.evaluate("""([a, b]) => { const s = app.graph.getNodeById(a), t = app.graph.getNodeById(b);
      for (const name of ["model", "positive", "negative", "latent_image"]) {
        const l = app.graph.links[s.inputs[s.findInputSlot(name)].link];
        app.graph.getNodeById(l.origin_id).connect(l.origin_slot, t, t.findInputSlot(name));
      } }""", [first, second])
    for sampler in (first, second):
        node_menu(page, sampler, "Convert seed to input")
    prim = add_node_by_search(page, "Primitive", (1100, 880))
    assert slot_type(page, prim) == "*"
    connect(page, prim, 0, first, "model")
    assert input_link(page, first, "model") is not None and slot_type(page, prim) == "*", \
        "a primitive cannot feed a socket that is no widget"
    connect(page, prim, 0, first, "seed")
    assert slot_type(page, prim) == "INT"
    widgets = page.evaluate("(id) => app.graph.getNodeById(id).widgets.map(w => [w.name, w.value])", prim)
    assert widgets == [["value", 42], ["control_after_generate", "fixed"]], "it took the seed's value and control"
    connect(page, prim, 0, second, "seed")
    connect(page, prim, 0, first, "cfg")   # a FLOAT input is refused: the primitive is an INT now
    assert page.evaluate("(id) => app.graph.getNodeById(id).outputs[0].links.length", prim) == 2
    set_number(page, prim, "value", 12345)
    pick_combo(page, prim, "control_after_generate", "increment")
    editor.shot("23-primitive-two-seeds")
    converted = browser_prompt(page)
    seeds = [converted["output"][str(s)]["inputs"]["seed"] for s in (first, second)]
    assert seeds == [12345, 12345]
    assert str(prim) not in converted["output"]
    assert without_meta(server_convert(editor, converted["workflow"])) == without_meta(converted["output"])
    page.click("#queue-button")
    page.wait_for_function("app.execution.ownPrompts.size > 0")
    wait_idle(page)
    (prompt_id,) = page.evaluate("[...app.execution.ownPrompts]")
    entry = history_entry(editor, prompt_id)
    assert entry["status"]["status_str"] == "success"
    assert [entry["prompt"][2][str(s)]["inputs"]["seed"] for s in (first, second)] == [12345, 12345]
    assert widget_value(page, prim, "value") == 12346, "control_after_generate stepped the primitive"
    assert [widget_value(page, s, "seed") for s in (first, second)] == [12346, 12346]
    assert editor.errors == []


@pytest.mark.parametrize(("folder", "name", "steps", "handover", "saver"), [
    (OWN, "own_primitives_and_notes", 30, 24, 13),
    pytest.param(SHARED, "sdxl_base_refiner", 25, 20, 19, marks=needs_shared)])
def test_sdxl_workflow_queues_the_converted_prompt_and_runs(editor, folder, name, steps, handover, saver):
    page = editor.page
    open_pair(editor, folder, name)
    page.evaluate("""app.graph._nodes.filter(n => n.comfyClass === 'CheckpointLoaderSimple')
      .forEach(n => { n.widgets[0].value = 'diffgraph-shapes.safetensors'; });""")
    sent = browser_prompt(page)["output"]
    page.click("#queue-button")
    page.wait_for_function("app.execution.ownPrompts.size > 0")
    wait_idle(page, timeout=30000)
    (prompt_id,) = page.evaluate("[...app.execution.ownPrompts]")
    entry = history_entry(editor, prompt_id)
    assert entry["status"]["status_str"] == "success"
    assert without_meta(entry["prompt"][2]) == without_meta(sent)
    assert (sent["10"]["inputs"]["steps"], sent["10"]["inputs"]["end_at_step"]) == (steps, handover)
    assert (sent["11"]["inputs"]["steps"], sent["11"]["inputs"]["start_at_step"]) == (steps, handover)
    wait_for_image_on(page, saver)


def click_title(page, node_id: int) -> None:
    pos = page.evaluate("""(id) => { const n = app.graph.getNodeById(id);
      return [n.pos[0] + n.size[0] / 2, n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT / 2]; }""", node_id)
    page.mouse.click(*to_screen(page, pos))


@needs_shared
def test_bypassed_and_muted_nodes_are_rewired_and_dropped_as_the_server_does(editor):
    page = editor.page
    open_pair(editor, SHARED, "lora_multiple")
    page.evaluate("app.fitView(); app.canvas.setDirty(true, true)")
    loras = page.evaluate("app.graph._nodes.filter(n => n.comfyClass === 'LoraLoader').map(n => n.id).sort()")
    ckpt = find_node(page, "CheckpointLoaderSimple")
    sampler = find_node(page, "KSampler")
    for lora in loras:
        click_title(page, lora)
        page.keyboard.press("Control+b")
    assert page.evaluate("(ids) => ids.map(id => app.graph.getNodeById(id).mode)", loras) == [4, 4]
    editor.shot("24-bypassed-loras")
    converted = browser_prompt(page)
    out = converted["output"]
    assert not set(map(str, loras)) & set(out)
    assert out[str(sampler)]["inputs"]["model"] == [str(ckpt), 0], "model passes through both bypassed LoRAs"
    assert without_meta(server_convert(editor, converted["workflow"])) == without_meta(out)
    # Ctrl+B again restores one; Ctrl+M mutes the checkpoint: every link from it is dropped.
    click_title(page, loras[0])
    page.keyboard.press("Control+b")
    click_title(page, ckpt)
    page.keyboard.press("Control+m")
    converted = browser_prompt(page)
    out = converted["output"]
    assert page.evaluate("(id) => app.graph.getNodeById(id).mode", ckpt) == 2
    assert str(ckpt) not in out and str(loras[0]) in out
    assert out[str(sampler)]["inputs"]["model"] == [str(loras[0]), 0]
    assert "model" not in out[str(loras[0])]["inputs"], "the bypassed LoRA passes on a muted checkpoint: nothing"
    assert without_meta(server_convert(editor, converted["workflow"])) == without_meta(out)
    assert editor.errors == []


WIDGETS_10 = ["add_noise", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "start_at_step",
              "end_at_step", "return_with_leftover_noise"]


def every_widget_a_socket(ui: dict) -> dict:
    """sdxl_base_refiner as newer ComfyUI frontends save it: each widget of the samplers has a socket
    (linked or not, so link slots move), a Reroute between a primitive and one target, other values."""
    links = {link[0]: link for link in ui["links"]}
    for node in ui["nodes"]:
        if node["type"] != "KSamplerAdvanced":
            continue
        by_name = {i["name"]: i for i in node["inputs"]}
        sockets = [i for i in node["inputs"] if "widget" not in i]
        node["inputs"] = sockets + [by_name.get(name) or {"name": name, "type": "*", "link": None,
                                                         "widget": {"name": name}} for name in WIDGETS_10]
        for slot, inp in enumerate(node["inputs"]):
            if inp["link"] is not None:
                links[inp["link"]][4] = slot
    prims = {n["id"]: n for n in ui["nodes"] if n["type"] == "PrimitiveNode"}
    prims[45]["widgets_values"] = [30, "increment"]
    prims[47]["widgets_values"] = [18, "fixed"]
    # Link 44 ran end_at_step(47) -> sampler 11's start_at_step; now it runs through reroute 49.
    links[44][1], links[44][2] = 49, 0
    links[45] = [45, 47, 0, 49, 0, "*"]
    prims[47]["outputs"][0]["links"] = [43, 45]
    ui["nodes"].append({"id": 49, "type": "Reroute", "pos": [1300, 900], "size": [75, 26], "flags": {},
                        "order": 11, "mode": 0, "inputs": [{"name": "", "type": "*", "link": 45}],
                        "outputs": [{"name": "", "type": "*", "links": [44]}], "properties": {}})
    ui["links"] = sorted(links.values())
    ui["last_node_id"], ui["last_link_id"] = 49, 45
    return ui


@needs_shared
def test_newer_socket_layout_and_a_reroute_between_primitive_and_target(editor, tmp_path):
    page = editor.page
    ui = every_widget_a_socket(load_pair(SHARED, "sdxl_base_refiner")[0])
    path = tmp_path / "sdxl_sockets.json"
    path.write_text(json.dumps(ui))
    open_workflow_file(page, path, len(ui["nodes"]))
    assert slot_type(page, 49) == "INT", "the reroute took the primitive's type"
    out = browser_prompt(page)["output"]
    assert without_meta(out) == without_meta(server_convert(editor, ui))
    got = {(nid, k): out[nid]["inputs"][k] for nid, k in
           [("10", "steps"), ("11", "steps"), ("10", "end_at_step"), ("11", "start_at_step")]}
    assert got == {("10", "steps"): 30, ("11", "steps"): 30, ("10", "end_at_step"): 18, ("11", "start_at_step"): 18}
    assert widget_value(page, 45, "control_after_generate") == "increment"
    assert editor.errors == []
