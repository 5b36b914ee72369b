// Workflow conversions done in the browser, as ComfyUI's frontend does: the canvas graph to an
// API-format prompt (widgets by name, links as [id, slot], muted nodes and notes dropped, bypassed
// nodes and reroutes passed through, primitive values inlined), a tidy UI-format 0.4 serialisation,
// and an API-format prompt laid out as a new graph.

/* global LiteGraph */
import {convertWidgetToInput} from "./nodedefs.js";

const MODE_NEVER = 2;
const MODE_BYPASS = 4;

/** graph.serialize() with plain arrays where litegraph leaves typed arrays (size, pos). */
export function serializeGraph(graph) {
  const data = JSON.parse(JSON.stringify(graph.serialize()));
  for (const node of data.nodes || []) {
    for (const key of ["pos", "size"]) {
      const v = node[key];
      if (v && !Array.isArray(v) && typeof v === "object") node[key] = [v[0], v[1]];
    }
  }
  return data;
}

function widgetValue(w) {
  const v = w.value;
  // A list-valued constant would read as a link in the API format: wrap it as ComfyUI does.
  return Array.isArray(v) ? {__value__: v} : v;
}

/**
 * The link a bypassed node passes through for output `slot` (the server's rule): the input at the
 * same index if it has the output's type, else the first input of that type; the first with a link.
 */
function bypassInput(node, slot) {
  const inputs = node.inputs || [];
  const outType = node.outputs && node.outputs[slot] && node.outputs[slot].type;
  const candidates = [];
  if (slot < inputs.length && inputs[slot].type === outType) candidates.push(inputs[slot]);
  candidates.push(...inputs.filter((i) => i.type === outType));
  const hit = candidates.find((i) => i.link != null);
  return hit ? hit.link : null;
}

/**
 * Follow a link back to what feeds it, as engine/convert.py does: {node, slot} for a real output,
 * {value} for a PrimitiveNode, null when it is dropped (muted or missing origin, a note, a loop).
 * Bypassed nodes and Reroutes are passed through.
 */
export function resolveLink(graph, linkId) {
  const seen = new Set();
  let link = graph.links[linkId];
  while (link && !seen.has(link.id)) {
    seen.add(link.id);
    const origin = graph.getNodeById(link.origin_id);
    if (!origin || origin.mode === MODE_NEVER) return null;
    let upstream;
    if (origin.mode === MODE_BYPASS) {
      upstream = bypassInput(origin, link.origin_slot);
    } else if (origin.type === "Reroute") {
      upstream = origin.inputs && origin.inputs[0] ? origin.inputs[0].link : null;
    } else if (origin.type === "PrimitiveNode") {
      return origin.widgets && origin.widgets.length ? {value: origin.widgets[0].value} : null;
    } else if (origin.isVirtualNode) {
      return null;
    } else {
      return {node: origin, slot: link.origin_slot};
    }
    if (upstream == null) return null;
    link = graph.links[upstream];
  }
  return null;
}

/** The API-format prompt for the graph: {id: {class_type, inputs, _meta}}. */
export function graphToApi(graph) {
  const output = {};
  const nodes = graph.computeExecutionOrder(false) || graph._nodes;
  for (const node of nodes) {
    if (!node.comfyClass || node.isVirtualNode || node.mode === MODE_NEVER || node.mode === MODE_BYPASS) continue;
    const inputs = {};
    for (const w of node.widgets || []) {
      if (!w.inputType || w.isControl || (w.options && w.options.serialize === false)) continue;
      inputs[w.name] = widgetValue(w);
    }
    for (const input of node.inputs || []) {
      if (input.link == null) continue;
      // A dropped source leaves a socket out and a converted widget at its own value.
      const origin = resolveLink(graph, input.link);
      const name = (input.widget && input.widget.name) || input.name;
      if (origin && origin.node) inputs[name] = [String(origin.node.id), origin.slot];
      else if (origin) inputs[name] = widgetValue({value: origin.value});
    }
    output[String(node.id)] = {class_type: node.comfyClass, inputs, _meta: {title: node.title}};
  }
  // Links into nodes left out above (muted, virtual) must not dangle.
  for (const entry of Object.values(output)) {
    for (const [name, v] of Object.entries(entry.inputs)) {
      if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && !(v[0] in output)) {
        delete entry.inputs[name];
      }
    }
  }
  return output;
}

/** True when a parsed JSON document looks like an API-format prompt. */
export function isApiPrompt(data) {
  if (!data || typeof data !== "object" || Array.isArray(data) || Array.isArray(data.nodes)) return false;
  const values = Object.values(data);
  return values.length > 0 && values.every((v) => v && typeof v === "object" && typeof v.class_type === "string");
}

function isLink(v) {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && Number.isInteger(Number(v[1]));
}

/** Column of each node: the longest chain of links that feeds it. */
function depths(prompt) {
  const memo = {};
  const visit = (id, stack) => {
    if (id in memo) return memo[id];
    if (stack.has(id) || !prompt[id]) return 0;
    stack.add(id);
    let d = 0;
    for (const v of Object.values(prompt[id].inputs || {})) {
      if (isLink(v) && prompt[v[0]]) d = Math.max(d, visit(v[0], stack) + 1);
    }
    stack.delete(id);
    memo[id] = d;
    return d;
  };
  for (const id of Object.keys(prompt)) visit(id, new Set());
  return memo;
}

function setApiValues(node, inputs) {
  for (const w of node.widgets || []) {
    if (!w.inputType || !(w.name in inputs)) continue;
    const v = inputs[w.name];
    if (isLink(v)) continue;
    w.value = v && typeof v === "object" && "__value__" in v ? v.__value__ : v;
    if (w.control) w.control.value = "fixed";  // an API file states exact seeds
  }
}

/** Columns left to right by depth, each as wide as its widest node, nodes stacked top down. */
function layoutColumns(columns) {
  let x = 40;
  for (const column of columns) {
    if (!column) continue;
    let y = 40;
    for (const node of column) {
      node.pos = [x, y];
      y += node.size[1] + LiteGraph.NODE_TITLE_HEIGHT + 40;
    }
    x += Math.max(...column.map((n) => n.size[0])) + 70;
  }
}

/**
 * Build `graph` from an API-format prompt. Node ids are kept where they are numbers; widgets get
 * their values by name; a link into a widget converts that widget to an input. Returns the list of
 * class types that are not registered.
 */
export function apiToGraph(graph, prompt) {
  graph.clear();
  const missing = new Set();
  const created = {};
  const depth = depths(prompt);
  const ids = Object.keys(prompt).sort((a, b) => (depth[a] - depth[b]) || (Number(a) - Number(b)));
  const columns = [];
  for (const id of ids) {
    const entry = prompt[id];
    const node = LiteGraph.createNode(entry.class_type);
    if (!node) { missing.add(entry.class_type); continue; }
    if (/^\d+$/.test(id) && !graph.getNodeById(Number(id))) node.id = Number(id);
    if (entry._meta && entry._meta.title) node.title = entry._meta.title;
    graph.add(node);
    setApiValues(node, entry.inputs || {});
    (columns[depth[id] || 0] ||= []).push(node);
    created[id] = node;
  }
  layoutColumns(columns);
  for (const id of ids) {
    const node = created[id];
    if (!node) continue;
    for (const [name, v] of Object.entries(prompt[id].inputs || {})) {
      if (!isLink(v) || !created[v[0]]) continue;
      let slot = (node.inputs || []).findIndex((i) => i.name === name);
      if (slot < 0) {
        const w = (node.widgets || []).find((x) => x.name === name && x.inputType);
        if (!w) continue;
        convertWidgetToInput(node, w);
        slot = node.inputs.length - 1;
      }
      created[v[0]].connect(Number(v[1]), node, slot);
    }
  }
  return [...missing];
}
