"""The editor's default graph is the server's workflows/default.ui.json (one source, no copy in the page),
its layout keeps every link clear of other nodes, and a node added from search lands fully on-screen."""
from __future__ import annotations

import json
from pathlib import Path

from web_ui import add_node_by_search, widget_value

REPO = Path(__file__).resolve().parents[2]
DEFAULT_UI = json.loads((REPO / "workflows" / "default.ui.json").read_text())
DEFAULT_API = json.loads((REPO / "workflows" / "default.json").read_text())

# Sample every link as litegraph draws it (a cubic spline whose handles are a quarter of the distance,
# leaving outputs to the right and entering inputs from the left) and report points inside another node.
LINKS_BEHIND_NODES = """() => {
  const nodes = app.graph._nodes.map(n => [n.id, n.getBounding(new Float32Array(4))]);
  const hits = [];
  for (const link of Object.values(app.graph.links)) {
    if (!link) continue;
    const a = app.graph.getNodeById(link.origin_id).getConnectionPos(false, link.origin_slot);
    const b = app.graph.getNodeById(link.target_id).getConnectionPos(true, link.target_slot);
    const d = Math.hypot(b[0] - a[0], b[1] - a[1]) * 0.25;
    const p1 = [a[0] + d, a[1]], p2 = [b[0] - d, b[1]];
    for (let i = 1; i < 200; i++) {
      const t = i / 200, u = 1 - t;
      const w = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t];
      const x = w[0] * a[0] + w[1] * p1[0] + w[2] * p2[0] + w[3] * b[0];
      const y = w[0] * a[1] + w[1] * p1[1] + w[2] * p2[1] + w[3] * b[1];
      for (const [id, r] of nodes) {
        if (id === link.origin_id || id === link.target_id) continue;
        if (x > r[0] && x < r[0] + r[2] && y > r[1] && y < r[1] + r[3]) { hits.push([link.id, id]); break; }
      }
    }
  }
  return [...new Set(hits.map(h => h.join(" behind node ")))];
}"""


def without_meta(prompt: dict) -> dict:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in prompt.items()}


def test_default_graph_is_the_servers_default_ui_json(editor):
    page = editor.page
    assert page.evaluate("app.graph._nodes.length") == len(DEFAULT_UI["nodes"])
    for spec in DEFAULT_UI["nodes"]:
        got = page.evaluate("(id) => { const n = app.graph.getNodeById(id); return [n.type, [n.pos[0], n.pos[1]]]; }",
                            spec["id"])
        assert got == [spec["type"], spec["pos"]], spec["id"]
    sampler = next(n for n in DEFAULT_UI["nodes"] if n["type"] == "KSampler")
    assert widget_value(page, sampler["id"], "control_after_generate") == sampler["widgets_values"][1] == "fixed"
    loader = next(n for n in DEFAULT_UI["nodes"] if n["type"] == "CheckpointLoaderSimple")
    assert widget_value(page, loader["id"], "ckpt_name") == loader["widgets_values"][0]
    # ... and the prompt it sends is workflows/default.json, the file `scripts/run.sh` queues.
    assert without_meta(page.evaluate("app.graphToPrompt().output")) == without_meta(DEFAULT_API)
    # The page holds no second copy: the Default menu entry asks the server again.
    page.evaluate("app.graph.clear()")
    with page.expect_response(lambda r: r.url.endswith("/workflows/default.ui.json")):
        page.evaluate("app.loadDefault()")
    page.wait_for_function(f"app.graph._nodes.length === {len(DEFAULT_UI['nodes'])}")
    assert editor.errors == []


def test_links_do_not_run_behind_nodes_on_the_default_layout(editor):
    assert editor.page.evaluate(LINKS_BEHIND_NODES) == []


def test_a_node_added_from_search_near_the_corner_lands_fully_on_screen(editor):
    page = editor.page
    box = page.evaluate("(() => { const r = app.canvasEl.getBoundingClientRect();"
                        " return [r.left, r.top, r.right, r.bottom]; })()")
    corner = page.evaluate("""([x, y]) => { const r = app.canvasEl.getBoundingClientRect(), ds = app.canvas.ds;
      return [(x - r.left) / ds.scale - ds.offset[0], (y - r.top) / ds.scale - ds.offset[1]]; }""",
                           [box[2] - 40, box[3] - 40])
    empty = page.evaluate("""([x, y]) => !app.graph.getNodeOnPos(x, y)""", corner)
    assert empty, "the corner of the default view is empty canvas"
    node = add_node_by_search(page, "KSampler", corner)
    screen = page.evaluate("""(id) => { const n = app.graph.getNodeById(id), ds = app.canvas.ds;
      const r = app.canvasEl.getBoundingClientRect(), b = n.getBounding(new Float32Array(4));
      return [r.left + (b[0] + ds.offset[0]) * ds.scale, r.top + (b[1] + ds.offset[1]) * ds.scale,
              r.left + (b[0] + b[2] + ds.offset[0]) * ds.scale, r.top + (b[1] + b[3] + ds.offset[1]) * ds.scale]; }""",
                           node)
    assert box[0] <= screen[0] and box[1] <= screen[1] and screen[2] <= box[2] and screen[3] <= box[3], (screen, box)
    editor.shot("03-search-node-in-view")
    assert editor.errors == []
