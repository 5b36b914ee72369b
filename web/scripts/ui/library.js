// Finding nodes: the search dialog opened by a double-click on empty canvas (or by dropping a link
// on empty space), and the node library panel with categories as folders. Both rank display
// names, class names, categories and descriptions from /object_info.

/* global LiteGraph */
import {el} from "./panels.js";

/** Node definitions matching `query`, best first: [{name, def}]. */
export function searchNodes(defs, query, typeFilter = null) {
  const q = query.trim().toLowerCase();
  const results = [];
  for (const [name, def] of Object.entries(defs)) {
    if (typeFilter && !typeFilter(def)) continue;
    const display = (def.display_name || name).toLowerCase();
    let score = 0;
    if (!q) score = 1;
    else if (display === q || name.toLowerCase() === q) score = 100;
    else if (display.startsWith(q) || name.toLowerCase().startsWith(q)) score = 50;
    else if (display.includes(q) || name.toLowerCase().includes(q)) score = 30;
    else if (q.split(/\s+/).every((w) => `${display} ${name} ${def.category}`.toLowerCase().includes(w))) score = 15;
    else if ((def.description || "").toLowerCase().includes(q)) score = 5;
    if (score) results.push({name, def, score});
  }
  results.sort((a, b) => b.score - a.score || (a.def.display_name || a.name).localeCompare(b.def.display_name || b.name));
  return results;
}

function inputTypes(def) {
  const types = [];
  for (const section of ["required", "optional"]) {
    for (const spec of Object.values((def.input && def.input[section]) || {})) {
      types.push(Array.isArray(spec[0]) ? "COMBO" : String(spec[0]));
    }
  }
  return types;
}

const matches = (a, b) => LiteGraph.isValidConnection(a, b);

export class SearchBox {
  constructor(app) {
    this.app = app;
    this.root = document.getElementById("searchbox");
    this.input = this.root.querySelector("input");
    this.list = this.root.querySelector(".results");
    this.selected = 0;
    this.results = [];
    this.input.addEventListener("input", () => this.update());
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.root.addEventListener("mousedown", (e) => e.stopPropagation());
    document.addEventListener("mousedown", () => this.close());
  }

  /** Open at a mouse event; `opts` may hold node_from/slot_from or node_to/slot_from (litegraph's). */
  open(event, opts = {}) {
    this.opts = opts;
    this.canvasPos = this.app.canvas.convertEventToCanvasOffset(event);
    const x = Math.min(event.clientX, window.innerWidth - 420);
    const y = Math.min(event.clientY, window.innerHeight - 360);
    Object.assign(this.root.style, {left: `${Math.max(8, x)}px`, top: `${Math.max(48, y)}px`});
    this.root.hidden = false;
    this.input.value = "";
    this.update();
    setTimeout(() => this.input.focus(), 0);
  }

  close() {
    this.root.hidden = true;
  }

  typeFilter() {
    const o = this.opts || {};
    if (o.node_from && o.slot_from) return (def) => inputTypes(def).some((t) => matches(o.slot_from.type, t));
    if (o.node_to && o.slot_from) {
      return (def) => (def.output || []).some((t) => matches(Array.isArray(t) ? "COMBO" : t, o.slot_from.type));
    }
    return null;
  }

  update() {
    this.results = searchNodes(this.app.nodeDefs, this.input.value, this.typeFilter()).slice(0, 40);
    this.selected = 0;
    this.list.replaceChildren(...this.results.map((r, i) => el("div", {
      class: "result", dataset: {type: r.name}, title: r.def.description || "",
      onmousedown: (e) => { e.preventDefault(); this.choose(i); }},
      el("span", {class: "rname"}, r.def.display_name || r.name),
      el("span", {class: "rcat"}, r.def.category || ""))));
    this.highlight();
  }

  highlight() {
    [...this.list.children].forEach((c, i) => c.classList.toggle("selected", i === this.selected));
    const cur = this.list.children[this.selected];
    if (cur) cur.scrollIntoView({block: "nearest"});
  }

  onKey(e) {
    if (e.key === "ArrowDown") this.selected = Math.min(this.selected + 1, this.results.length - 1);
    else if (e.key === "ArrowUp") this.selected = Math.max(this.selected - 1, 0);
    else if (e.key === "Enter") { this.choose(this.selected); e.preventDefault(); return; }
    else if (e.key === "Escape") { this.close(); return; }
    else return;
    e.preventDefault();
    this.highlight();
  }

  choose(index) {
    const r = this.results[index];
    this.close();
    if (!r) return;
    const node = this.app.addNode(r.name, this.canvasPos);
    const o = this.opts || {};
    if (!node) return;
    if (o.node_from && o.slot_from) {
      const slot = (node.inputs || []).findIndex((i) => matches(o.slot_from.type, i.type));
      const out = o.node_from.outputs.indexOf(o.slot_from);
      if (slot >= 0 && out >= 0) o.node_from.connect(out, node, slot);
    } else if (o.node_to && o.slot_from) {
      const out = (node.outputs || []).findIndex((x) => matches(x.type, o.slot_from.type));
      const slot = o.node_to.inputs.indexOf(o.slot_from);
      if (slot >= 0 && out >= 0) node.connect(out, o.node_to, slot);
    }
  }
}

/** The library panel: a filter box and category folders; a click adds the node at the view's centre. */
export class LibraryPanel {
  constructor(app, root) {
    this.app = app;
    this.root = root;
    this.filter = root.querySelector("input");
    this.tree = root.querySelector(".tree");
    this.filter.addEventListener("input", () => this.render());
  }

  render() {
    const q = this.filter.value;
    const found = searchNodes(this.app.nodeDefs, q);
    const byCat = {};
    for (const r of found) (byCat[r.def.category || "uncategorized"] ||= []).push(r);
    const folders = Object.keys(byCat).sort().map((cat) => {
      const items = byCat[cat].sort((a, b) => (a.def.display_name || a.name).localeCompare(b.def.display_name || b.name))
        .map((r) => el("div", {class: "lib-node", dataset: {type: r.name}, draggable: "true",
          title: r.def.description || r.def.display_name || r.name,
          onclick: () => this.app.addNode(r.name),
          ondragstart: (e) => e.dataTransfer.setData("application/x-diffgraph-node", r.name)},
          r.def.display_name || r.name));
      const folder = el("details", {class: "lib-cat", dataset: {category: cat}}, el("summary", {}, cat), items);
      if (q) folder.open = true;
      return folder;
    });
    this.tree.replaceChildren(...folders);
  }
}
