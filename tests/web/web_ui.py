"""UI actions on the litegraph canvas for the browser tests: mouse positions of nodes, slots and
widgets computed from the canvas transform, then real mouse and keyboard input through Playwright."""
from __future__ import annotations

import base64

TO_SCREEN = """([x, y]) => {
  const r = app.canvasEl.getBoundingClientRect(), ds = app.canvas.ds;
  return [r.left + (x + ds.offset[0]) * ds.scale, r.top + (y + ds.offset[1]) * ds.scale];
}"""


def to_screen(page, pos) -> tuple[float, float]:
    x, y = page.evaluate(TO_SCREEN, list(pos))
    return x, y


def slot_screen(page, node_id: int, is_input: bool, slot) -> tuple[float, float]:
    """Screen position of a node's slot, given by index or name."""
    pos = page.evaluate("""([id, isInput, slot]) => {
      const n = app.graph.getNodeById(id);
      const list = isInput ? n.inputs : n.outputs;
      const i = typeof slot === "number" ? slot : list.findIndex(s => s.name === slot);
      return Array.from(n.getConnectionPos(isInput, i));
    }""", [node_id, is_input, slot])
    return to_screen(page, pos)


def widget_screen(page, node_id: int, name: str, where: str = "center") -> tuple[float, float]:
    pos = page.evaluate("""([id, name, where]) => {
      const n = app.graph.getNodeById(id);
      const w = n.widgets.find(w => w.name === name);
      const x = where === "left" ? 20 : where === "right" ? n.size[0] - 20 : n.size[0] / 2;
      return [n.pos[0] + x, n.pos[1] + w.last_y + LiteGraph.NODE_WIDGET_HEIGHT / 2];
    }""", [node_id, name, where])
    return to_screen(page, pos)


def drag(page, start, end, steps: int = 8) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def connect(page, src_id: int, out_slot, dst_id: int, in_slot) -> None:
    """Drag a link from an output slot to an input slot."""
    drag(page, slot_screen(page, src_id, False, out_slot), slot_screen(page, dst_id, True, in_slot))


def node_ids(page) -> list[int]:
    return page.evaluate("app.graph._nodes.map(n => n.id)")


def add_node_by_search(page, query: str, graph_pos) -> int:
    """Double-click empty canvas at graph_pos, type in the search box, press Enter; the new node's id."""
    before = set(node_ids(page))
    page.mouse.dblclick(*to_screen(page, graph_pos))
    box = page.locator("#searchbox input")
    box.wait_for(state="visible")
    box.fill(query)
    page.keyboard.press("Enter")
    page.wait_for_function(f"app.graph._nodes.length === {len(before) + 1}")
    (new,) = set(node_ids(page)) - before
    return new


def set_number(page, node_id: int, name: str, value) -> None:
    """Click the middle of a number widget and type the value into litegraph's prompt dialog."""
    page.mouse.click(*widget_screen(page, node_id, name))
    field = page.locator(".graphdialog input").last
    field.wait_for(state="visible")
    field.fill(str(value))
    field.press("Enter")


def pick_combo(page, node_id: int, name: str, value: str) -> None:
    page.mouse.click(*widget_screen(page, node_id, name))
    page.locator(".litecontextmenu .litemenu-entry", has_text=value).first.click()


def widget_value(page, node_id: int, name: str):
    return page.evaluate("([id, name]) => app.graph.getNodeById(id).widgets.find(w => w.name === name).value",
                         [node_id, name])


def drop_file(page, data: bytes, filename: str, mime: str) -> None:
    """Dispatch a real drop event carrying `data` as a File onto the canvas."""
    page.evaluate("""([b64, filename, mime]) => {
      const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], filename, {type: mime}));
      const r = app.canvasEl.getBoundingClientRect();
      const opts = {dataTransfer: dt, bubbles: true, cancelable: true, clientX: r.left + 300, clientY: r.top + 300};
      app.canvasEl.dispatchEvent(new DragEvent("dragover", opts));
      app.canvasEl.dispatchEvent(new DragEvent("drop", opts));
    }""", [base64.b64encode(data).decode(), filename, mime])


def find_node(page, comfy_class: str) -> int:
    return page.evaluate("(t) => app.graph._nodes.find(n => n.comfyClass === t).id", comfy_class)


def wait_for_image_on(page, node_id: int, timeout: float = 20000) -> str:
    page.wait_for_function("""(id) => { const n = app.graph.getNodeById(id);
      return n.imgs && n.imgs.length && n.imgs[0].complete && n.imgs[0].naturalWidth > 0; }""",
                           arg=node_id, timeout=timeout)
    return page.evaluate("(id) => app.graph.getNodeById(id).imgs[0].src", node_id)


def wait_idle(page, timeout: float = 20000) -> None:
    """Until the server's queue is empty (nothing running or pending)."""
    page.wait_for_function("fetch('/api/queue').then(r => r.json())"
                           ".then(q => !q.queue_running.length && !q.queue_pending.length)", timeout=timeout)


def history_entry(editor, prompt_id: str, timeout: float = 10.0) -> dict:
    """The history entry of a prompt, once written (it lands just after the last node ran)."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = editor.api(f"/api/history/{prompt_id}")
        if entry:
            return entry[prompt_id]
        time.sleep(0.1)
    raise AssertionError(f"no history for {prompt_id}")


def node_menu(page, node_id: int, entry: str) -> None:
    """Right-click a node's title and pick a context-menu entry."""
    pos = page.evaluate("""(id) => { const n = app.graph.getNodeById(id);
      return [n.pos[0] + n.size[0] / 2, n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT / 2]; }""", node_id)
    page.mouse.click(*to_screen(page, pos), button="right")
    page.locator(".litecontextmenu .litemenu-entry", has_text=entry).first.click()


def open_workflow_file(page, path, node_count: int) -> None:
    """Open a workflow file through the Workflow menu's file input; wait until its nodes are on the canvas."""
    page.evaluate("app.graph.clear()")
    page.set_input_files("#file-input", str(path))
    page.wait_for_function(f"app.graph._nodes.length === {node_count}")


def post_json(url: str, body) -> dict:
    import json
    import urllib.request
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())
