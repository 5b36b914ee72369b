"""The editor in a real browser: it loads cleanly, lists the nodes, and a user can build the default
text-to-image graph with the mouse and keyboard, queue it, and see the image on the SaveImage node."""
from __future__ import annotations

import json
import re
from pathlib import Path

from web_ui import (
    add_node_by_search,
    connect,
    drag,
    find_node,
    history_entry,
    node_menu,
    pick_combo,
    set_number,
    slot_screen,
    to_screen,
    wait_for_image_on,
    wait_idle,
    widget_screen,
    widget_value,
)

REPO = Path(__file__).resolve().parents[2]
FAKE_NODES = {"Load Checkpoint", "CLIP Text Encode (Prompt)", "Empty Latent Image", "KSampler", "VAE Decode",
              "Save Image", "Preview Image"}


def test_page_loads_without_console_errors_and_lists_builtin_nodes(editor):
    page = editor.page
    default_ui = json.loads((REPO / "workflows" / "default.ui.json").read_text())
    assert page.evaluate("app.graph._nodes.length") == len(default_ui["nodes"]), "first visit shows the default workflow"
    page.click("#toggle-library")
    listed = set(page.locator("#library .lib-node").evaluate_all("els => els.map(e => e.textContent)"))
    assert FAKE_NODES <= listed
    categories = set(page.locator("#library .lib-cat > summary").evaluate_all("els => els.map(e => e.textContent)"))
    assert {"loaders", "conditioning", "sampling", "latent", "image"} <= categories
    ksampler = page.locator("#library .lib-node[data-type=KSampler]")
    assert "Denoises a latent" in ksampler.get_attribute("title")
    editor.shot("01-default-workflow")
    # The default workflow (workflows/default.ui.json) names the bundled checkpoint.
    ckpt = find_node(page, "CheckpointLoaderSimple")
    assert widget_value(page, ckpt, "ckpt_name") == "diffgraph-shapes.safetensors"
    assert page.evaluate("window.__extensionSetup") is True, "the pack's web extension ran its setup hook"
    assert page.evaluate("LiteGraph.registered_node_types.KSampler.prototype.markedByExtension") is True
    assert editor.errors == []


def test_search_box_opens_on_double_click_and_ranks_display_names(editor):
    page = editor.page
    page.evaluate("app.graph.clear()")
    node = add_node_by_search(page, "ksam", (300, 200))
    assert page.evaluate("(id) => app.graph.getNodeById(id).comfyClass", node) == "KSampler"
    page.mouse.dblclick(500, 600)
    page.locator("#searchbox input").fill("latent image")
    first = page.locator("#searchbox .result").first
    assert first.get_attribute("data-type") == "EmptyLatentImage"
    editor.shot("02-search-box")
    page.keyboard.press("Escape")
    assert page.locator("#searchbox").is_hidden()


def test_tooltips_show_descriptions_from_object_info(editor):
    page = editor.page
    ks = find_node(page, "KSampler")
    title = page.evaluate("""(id) => { const n = app.graph.getNodeById(id);
      return [n.pos[0] + 40, n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT / 2]; }""", ks)
    page.mouse.move(*to_screen(page, title))
    page.wait_for_selector("#tooltip:not([hidden])")
    assert "Denoises a latent" in page.inner_text("#tooltip")
    page.mouse.move(*widget_screen(page, ks, "seed", "left"))
    page.wait_for_function("document.getElementById('tooltip').textContent.includes('random seed')")


def test_build_default_graph_by_ui_actions_queue_and_see_image(editor):
    page = editor.page
    page.click("#workflow-menu summary")
    page.click("#menu-new")
    assert page.evaluate("app.graph._nodes.length") == 0
    ckpt = add_node_by_search(page, "Load Checkpoint", (20, 200))
    pos = add_node_by_search(page, "CLIP Text Encode", (400, 20))
    neg = add_node_by_search(page, "CLIP Text Encode", (400, 260))
    latent = add_node_by_search(page, "Empty Latent", (400, 500))
    sampler = add_node_by_search(page, "KSampler", (800, 100))
    decode = add_node_by_search(page, "VAE Decode", (1180, 100))
    save = add_node_by_search(page, "Save Image", (1180, 260))
    for src, out, dst, inp in [(ckpt, "MODEL", sampler, "model"), (ckpt, "CLIP", pos, "clip"),
                               (ckpt, "CLIP", neg, "clip"), (pos, 0, sampler, "positive"),
                               (neg, 0, sampler, "negative"), (latent, 0, sampler, "latent_image"),
                               (sampler, 0, decode, "samples"), (ckpt, "VAE", decode, "vae"),
                               (decode, 0, save, "images")]:
        connect(page, src, out, dst, inp)
    assert page.evaluate("Object.keys(app.graph.links).length") == 9
    page.locator(f"textarea[data-node='{pos}'][data-widget='text']").fill("a blue circle")
    set_number(page, latent, "width", 64)
    set_number(page, latent, "height", 48)
    set_number(page, sampler, "steps", 12)
    pick_combo(page, sampler, "control_after_generate", "fixed")
    set_number(page, sampler, "seed", 1234)
    pick_combo(page, sampler, "sampler_name", "ddim")
    assert [widget_value(page, latent, n) for n in ("width", "height")] == [64, 48]
    editor.shot("03-built-by-hand")
    page.click("#queue-button")
    page.wait_for_function("app.execution.runningNodeId !== null || Object.keys(app.execution.executed).length",
                           timeout=20000)
    src = wait_for_image_on(page, save)
    assert re.search(r"/api/view\?filename=ComfyUI_\d{5}_\.png", src)
    editor.shot("04-image-in-save-node")
    (pid,) = page.evaluate("[...app.execution.ownPrompts]")
    entry = history_entry(editor, pid)
    prompt = entry["prompt"][2]
    assert prompt[str(sampler)]["inputs"]["seed"] == 1234
    assert prompt[str(sampler)]["inputs"]["steps"] == 12
    assert prompt[str(sampler)]["inputs"]["sampler_name"] == "ddim"
    assert prompt[str(sampler)]["inputs"]["positive"] == [str(pos), 0]
    assert prompt[str(pos)]["inputs"]["text"] == "a blue circle"
    assert entry["prompt"][3]["extra_pnginfo"]["workflow"]["nodes"], "the UI workflow travels in extra_pnginfo"
    png = editor.fetch_bytes(src.split(editor.url, 1)[-1] if src.startswith(editor.url) else src)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.locator("#gallery .gallery-item").count() >= 1
    assert widget_value(page, sampler, "seed") == 1234, "control 'fixed' keeps the seed"
    assert editor.errors == []


def test_incompatible_link_is_refused(editor):
    page = editor.page
    ckpt, sampler = find_node(page, "CheckpointLoaderSimple"), find_node(page, "KSampler")
    page.evaluate("(id) => app.graph.getNodeById(id).disconnectInput(0)", sampler)
    drag(page, slot_screen(page, ckpt, False, "CLIP"), slot_screen(page, sampler, True, "model"))
    assert page.evaluate("(id) => app.graph.getNodeById(id).inputs[0].link", sampler) is None
    drag(page, slot_screen(page, ckpt, False, "MODEL"), slot_screen(page, sampler, True, "model"))
    assert page.evaluate("(id) => app.graph.getNodeById(id).inputs[0].link", sampler) is not None


def test_seed_control_after_generate_increments_per_queued_prompt(editor):
    page = editor.page
    sampler = find_node(page, "KSampler")
    pick_combo(page, sampler, "control_after_generate", "increment")
    set_number(page, sampler, "seed", 10)
    page.fill("#batch-count", "3")
    page.click("#queue-button")
    page.wait_for_function("app.execution.ownPrompts.size === 3")
    wait_idle(page)
    seeds = [history_entry(editor, pid)["prompt"][2][str(sampler)]["inputs"]["seed"]
             for pid in page.evaluate("[...app.execution.ownPrompts]")]
    assert seeds == [10, 11, 12]
    assert widget_value(page, sampler, "seed") == 13


def test_widget_converts_to_input_and_back(editor):
    page = editor.page
    sampler = find_node(page, "KSampler")
    node_menu(page, sampler, "Convert steps to input")
    assert page.evaluate("(id) => app.graph.getNodeById(id).inputs.some(i => i.name === 'steps' && i.widget)", sampler)
    editor.shot("05-widget-as-input")
    node_menu(page, sampler, "Convert steps to widget")
    assert not page.evaluate("(id) => app.graph.getNodeById(id).inputs.some(i => i.name === 'steps')", sampler)
