"""Workflows in the browser: errors land on the nodes that caused them, a PNG dropped on the page
restores its graph, save -> load round-trips, API-format files open, the last graph survives a
reload, copy/paste works, and the queue panel cancels pending prompts."""
from __future__ import annotations

import json
import urllib.request

import pytest
from web_ui import (
    add_node_by_search,
    connect,
    drop_file,
    find_node,
    history_entry,
    set_number,
    wait_for_image_on,
    wait_idle,
    widget_screen,
    widget_value,
)

from tests.workflow_pairs import OWN, SHARED, needs_shared

# The default graph (workflows/default.ui.json): its nodes, the vocabulary Note included.
N_DEFAULT = len(json.loads((OWN.parents[2] / "workflows" / "default.ui.json").read_text())["nodes"])


def queue_and_wait_idle(page) -> None:
    page.click("#queue-button")
    page.wait_for_function("app.execution.ownPrompts.size > 0")
    wait_idle(page)


def test_missing_link_shows_validation_error_on_that_node(editor):
    page = editor.page
    decode = find_node(page, "VAEDecode")
    page.evaluate("(id) => { const n = app.graph.getNodeById(id); n.disconnectInput(n.findInputSlot('vae')); }", decode)
    page.click("#queue-button")
    page.wait_for_selector("#error-panel:not([hidden])")
    assert page.evaluate("Object.keys(app.execution.nodeErrors)") == [str(decode)]
    row = page.locator("#error-panel .error-row")
    assert row.get_attribute("data-node") == str(decode)
    assert "vae" in row.inner_text().lower()
    assert page.evaluate("(id) => [...app.execution.nodeErrors[id].inputs]", str(decode)) == ["vae"]
    editor.shot("06-validation-error")
    assert page.evaluate("app.execution.ownPrompts.size") == 0, "the server refused the prompt"


def test_execution_error_shows_on_failing_node(editor):
    page = editor.page
    sampler = find_node(page, "KSampler")
    set_number(page, sampler, "cfg", 60)
    page.click("#queue-button")
    page.wait_for_function("Object.keys(app.execution.nodeErrors).length > 0", timeout=20000)
    assert page.evaluate("Object.keys(app.execution.nodeErrors)") == [str(sampler)]
    text = page.inner_text("#error-panel")
    assert "cfg 60" in text and "too high" in text
    editor.shot("07-execution-error")


def test_png_drop_restores_workflow_from_its_text_chunk(editor):
    page = editor.page
    enc = page.evaluate("app.graph._nodes.find(n => n.comfyClass === 'CLIPTextEncode' && n.widgets[0].value).id")
    page.locator(f"textarea[data-node='{enc}']").fill("a green circle from the png")
    page.evaluate("(id) => { app.graph.getNodeById(id).title = 'Restored prompt'; }", enc)
    save = find_node(page, "SaveImage")
    queue_and_wait_idle(page)
    src = wait_for_image_on(page, save)
    png = editor.fetch_bytes(src[src.index("/api/view"):])
    page.evaluate("app.graph.clear()")
    drop_file(page, png, "dropped.png", "image/png")
    page.wait_for_function(f"app.graph._nodes.length === {N_DEFAULT}")
    assert page.evaluate("(id) => app.graph.getNodeById(id).title", enc) == "Restored prompt"
    assert widget_value(page, enc, "text") == "a green circle from the png"
    editor.shot("08-png-dropped")
    assert editor.errors == []


def test_png_with_only_an_api_prompt_opens_as_graph(editor):
    from io import BytesIO

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    prompt = api_prompt()
    meta = PngInfo()
    meta.add_text("prompt", json.dumps(prompt))
    buf = BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG", pnginfo=meta)
    page = editor.page
    drop_file(page, buf.getvalue(), "api.png", "image/png")
    page.wait_for_function("app.graph._nodes.length === 7 && app.graph.getNodeById(6)?.widgets?.[0]?.value === 'from api png'")


def test_save_then_load_round_trip_is_equal(editor, tmp_path):
    page = editor.page
    sampler = find_node(page, "KSampler")
    set_number(page, sampler, "steps", 7)
    page.once("dialog", lambda d: d.accept("roundtrip"))
    page.click("#workflow-menu summary")
    with page.expect_download() as dl:
        page.click("#menu-save")
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    assert saved.name == "roundtrip.json"
    data = json.loads(saved.read_text())
    assert data["version"] == 0.4 and len(data["nodes"]) == N_DEFAULT and len(data["links"]) == 9
    assert all(isinstance(n["size"], list) for n in data["nodes"])
    page.evaluate("app.graph.clear()")
    page.set_input_files("#file-input", str(saved))
    page.wait_for_function(f"app.graph._nodes.length === {N_DEFAULT}")
    again = page.evaluate("app.graphToPrompt().workflow")
    assert again == data
    assert widget_value(page, sampler, "steps") == 7


def api_prompt() -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "other-model.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "from api png", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 72, "height": 40, "batch_size": 2}},
        "3": {"class_type": "KSampler", "inputs": {
            "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0],
            "seed": 99, "steps": 3, "cfg": 5.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "api"}},
    }


def test_api_format_file_opens_and_runs(editor, tmp_path):
    page = editor.page
    path = tmp_path / "workflow_api.json"
    prompt = api_prompt()
    path.write_text(json.dumps(prompt))
    page.set_input_files("#file-input", str(path))
    page.wait_for_function("app.graph._nodes.length === 7 && app.graph.getNodeById(3) !== null")
    assert widget_value(page, 3, "scheduler") == "karras"
    assert widget_value(page, 5, "batch_size") == 2
    assert widget_value(page, 4, "ckpt_name") == "other-model.safetensors"
    assert page.evaluate("app.graphToPrompt().output") == {
        k: {**v, "_meta": {"title": page.evaluate(f"app.graph.getNodeById({k}).title")}} for k, v in prompt.items()}
    editor.shot("09-api-file-opened")
    queue_and_wait_idle(page)
    src = wait_for_image_on(page, 9)
    assert "api_" in src
    assert page.evaluate("app.graph.getNodeById(9).imgs.length") == 2, "a batch of two shows both images"


def test_last_workflow_is_restored_after_reload(editor):
    page = editor.page
    latent = find_node(page, "EmptyLatentImage")
    set_number(page, latent, "width", 96)
    page.wait_for_function("JSON.parse(localStorage.getItem('diffgraph.workflow'))?.nodes"
                           ".some(n => n.type === 'EmptyLatentImage' && n.widgets_values[0] === 96)")
    page.reload()
    page.wait_for_function("document.body.dataset.ready === 'true'")
    assert widget_value(page, latent, "width") == 96


def test_copy_paste_of_a_group_selection(editor):
    page = editor.page
    page.locator("#graph-canvas").click(position={"x": 700, "y": 780})
    page.keyboard.press("Control+a")
    assert page.evaluate("Object.keys(app.canvas.selected_nodes).length") == N_DEFAULT
    page.keyboard.press("Control+c")
    page.mouse.move(700, 700)
    page.keyboard.press("Control+v")
    assert page.evaluate("app.graph._nodes.length") == 2 * N_DEFAULT
    assert page.evaluate("Object.keys(app.graph.links).length") == 18, "links inside the selection are pasted too"
    page.keyboard.press("Delete")
    assert page.evaluate("app.graph._nodes.length") == N_DEFAULT


def test_queue_panel_cancels_a_pending_prompt_and_interrupt_stops_the_running_one(editor):
    page = editor.page
    sampler = find_node(page, "KSampler")
    set_number(page, sampler, "steps", 400)   # ~4 s per prompt with the fake sampler
    page.click("#toggle-queue")
    page.fill("#batch-count", "2")
    page.click("#queue-button")
    pending = page.locator("#queue-panel .qitem[data-state=pending]")
    pending.first.wait_for(timeout=10000)
    cancelled = pending.first.get_attribute("data-prompt-id")
    page.wait_for_selector("#queue-panel .qitem[data-state=running]", timeout=10000)
    editor.shot("10-queue-panel")
    pending.first.locator("[data-action=cancel]").click()
    page.wait_for_function(f"!document.querySelector(\"#queue-panel .qitem[data-state=pending][data-prompt-id='{cancelled}']\")")
    page.wait_for_function("app.execution.progress && app.execution.progress.value > 0", timeout=10000)
    editor.shot("11-running-progress")
    page.click("#interrupt-button")
    wait_idle(page, timeout=10000)
    (ran,) = [pid for pid in page.evaluate("[...app.execution.ownPrompts]") if pid != cancelled]
    entry = history_entry(editor, ran)
    assert entry["status"]["status_str"] != "success", "the interrupted prompt did not finish"
    assert editor.api(f"/api/history/{cancelled}") == {}, "the cancelled prompt never ran"


def post_json(url: str, body) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


def without_meta(prompt: dict) -> dict:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}


def test_browser_conversion_agrees_with_the_server_converter(editor):
    page = editor.page
    sampler = find_node(page, "KSampler")
    page.evaluate("(id) => { app.graph.getNodeById(id).widgets.find(w => w.name === 'steps').value = 9; }", sampler)
    converted = page.evaluate("app.graphToPrompt()")
    server = post_json(editor.url + "/api/workflow/convert", converted["workflow"])
    assert without_meta(converted["output"]) == without_meta(server["prompt"])


@pytest.mark.parametrize(("folder", "name"), [
    (OWN, "own_legacy_seed_control"), pytest.param(SHARED, "txt2img_embedding", marks=needs_shared)])
def test_comfyui_export_with_legacy_seed_control_loads_and_converts_like_its_api_twin(editor, folder, name):
    page = editor.page
    page.set_input_files("#file-input", str(folder / f"{name}.ui.json"))
    page.wait_for_function("app.graph._nodes.length === 7 && app.graph._nodes.some(n => n.comfyClass === 'KSampler')")
    expected = json.loads((folder / f"{name}.api.json").read_text())
    assert without_meta(page.evaluate("app.graphToPrompt().output")) == without_meta(expected)
    assert editor.errors == []


def test_image_upload_widget_uploads_and_a_preview_shows_it(editor, tmp_path):
    from PIL import Image
    picture = tmp_path / "upload me.png"
    Image.new("RGB", (40, 30), (200, 30, 160)).save(picture)
    page = editor.page
    page.evaluate("app.graph.clear()")
    load = add_node_by_search(page, "Load Image", (100, 100))
    preview = add_node_by_search(page, "Preview Image", (500, 100))
    connect(page, load, 0, preview, 0)
    with page.expect_file_chooser() as chooser:
        page.mouse.click(*widget_screen(page, load, "choose file to upload"))
    chooser.value.set_files(str(picture))
    page.wait_for_function("(id) => app.graph.getNodeById(id).widgets[0].value.startsWith('upload me')", arg=load)
    queue_and_wait_idle(page)
    src = wait_for_image_on(page, preview)
    assert "type=temp" in src
    assert page.evaluate("(id) => app.graph.getNodeById(id).imgs[0].naturalWidth", preview) == 40
    editor.shot("12-upload-and-preview")
