// Workflows in and out of the editor: the default text-to-image graph, the copy kept in
// localStorage across reloads, UI-format 0.4 files saved and loaded, API-format JSON opened, PNG
// files restored from their "workflow" (or "prompt") text chunk, and the examples menu's files.

/* global LiteGraph */
import {apiToGraph, isApiPrompt, serializeGraph} from "./convert.js";
import {fitWidgets} from "./nodedefs.js";
import {parseLooseJSON, readPngText} from "./png.js";

export const STORAGE_KEY = "diffgraph.workflow";
export const DEFAULT_PROMPT = "a large yellow circle on a blue background";

// The default graph, ComfyUI's text-to-image pipeline at the bundled model's native size (the same
// values as workflows/default.json).
const DEFAULT_NODES = [
  {key: "ckpt", type: "CheckpointLoaderSimple", pos: [30, 230], values: {}},
  {key: "pos", type: "CLIPTextEncode", pos: [420, 40], values: {text: DEFAULT_PROMPT}},
  {key: "neg", type: "CLIPTextEncode", pos: [420, 250], values: {text: ""}},
  {key: "latent", type: "EmptyLatentImage", pos: [420, 460], values: {width: 64, height: 64, batch_size: 4}},
  {key: "sampler", type: "KSampler", pos: [790, 120],
   values: {seed: 42, steps: 12, cfg: 5.0, sampler_name: "euler", scheduler: "normal", denoise: 1.0}},
  {key: "decode", type: "VAEDecode", pos: [1140, 120], values: {}},
  {key: "save", type: "SaveImage", pos: [1420, 120], values: {filename_prefix: "diffgraph-shapes"}},
];
const DEFAULT_LINKS = [
  ["ckpt", 0, "sampler", "model"], ["ckpt", 1, "pos", "clip"], ["ckpt", 1, "neg", "clip"],
  ["pos", 0, "sampler", "positive"], ["neg", 0, "sampler", "negative"], ["latent", 0, "sampler", "latent_image"],
  ["sampler", 0, "decode", "samples"], ["ckpt", 2, "decode", "vae"], ["decode", 0, "save", "images"],
];

/** Set widget values by name; combos keep their first option when the value is not offered. */
export function setWidgetValues(node, values) {
  for (const [name, value] of Object.entries(values)) {
    const w = (node.widgets || []).find((x) => x.name === name);
    if (!w) continue;
    if (w.type === "combo" && !w.options.values.includes(value)) continue;
    w.value = value;
  }
  fitWidgets(node);
}

/** Build the default workflow into `graph`. Returns the types that are not registered. */
export function buildDefaultGraph(graph) {
  graph.clear();
  const nodes = {};
  const missing = [];
  for (const spec of DEFAULT_NODES) {
    const node = LiteGraph.createNode(spec.type);
    if (!node) { missing.push(spec.type); continue; }
    node.pos = spec.pos.slice();
    graph.add(node);
    setWidgetValues(node, spec.values);
    nodes[spec.key] = node;
  }
  for (const [src, slot, dst, input] of DEFAULT_LINKS) {
    if (!nodes[src] || !nodes[dst]) continue;
    const idx = nodes[dst].findInputSlot(input);
    if (idx >= 0) nodes[src].connect(slot, nodes[dst], idx);
  }
  return missing;
}

/** Node types a UI-format workflow uses that are not registered (ComfyUI warns about them). */
export function missingTypes(data) {
  const types = new Set();
  for (const n of data.nodes || []) {
    if (n.type && !LiteGraph.registered_node_types[n.type]) types.add(n.type);
  }
  return [...types];
}

/** What a dropped or opened file holds: {kind: "ui"|"api", data} or {error}. */
export async function readWorkflowFile(file) {
  const name = (file.name || "").toLowerCase();
  if (name.endsWith(".png") || file.type === "image/png") {
    const chunks = readPngText(await file.arrayBuffer());
    if (!chunks) return {error: `${file.name} is not a PNG file`};
    if (chunks.workflow) return {kind: "ui", data: parseLooseJSON(chunks.workflow)};
    if (chunks.prompt) return {kind: "api", data: parseLooseJSON(chunks.prompt)};
    return {error: `${file.name} carries no workflow`};
  }
  let data;
  try {
    data = parseLooseJSON(await file.text());
  } catch (e) {
    return {error: `${file.name} is not valid JSON: ${e.message}`};
  }
  return classify(data, file.name);
}

/** Tell a UI-format workflow from an API-format prompt (also wrapped as {"prompt": {...}}). */
export function classify(data, name = "file") {
  if (data && Array.isArray(data.nodes)) return {kind: "ui", data};
  if (data && isApiPrompt(data.prompt)) return {kind: "api", data: data.prompt};
  if (isApiPrompt(data)) return {kind: "api", data};
  return {error: `${name} is neither a UI workflow nor an API-format prompt`};
}

/** Load a UI workflow or an API prompt into the graph; returns missing node types. */
export function loadInto(graph, kind, data) {
  if (kind === "api") return apiToGraph(graph, data);
  const missing = missingTypes(data);
  graph.configure(data);
  return missing;
}

/** Offer `data` as a JSON file download. */
export function downloadJSON(data, filename) {
  const blob = new Blob([JSON.stringify(data, null, 2)], {type: "application/json"});
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename.endsWith(".json") ? filename : `${filename}.json`;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 0);
}

/** Keep the current workflow in localStorage whenever it changes (checked once a second). */
export function startAutosave(graph) {
  let last = null;
  const save = () => {
    try {
      const text = JSON.stringify(serializeGraph(graph));
      if (text !== last) {
        localStorage.setItem(STORAGE_KEY, text);
        last = text;
      }
    } catch (e) {
      console.warn("autosave failed", e);
    }
  };
  setInterval(save, 1000);
  window.addEventListener("beforeunload", save);
  return save;
}

export function storedWorkflow() {
  const text = localStorage.getItem(STORAGE_KEY);
  if (!text) return null;
  try {
    const data = JSON.parse(text);
    return Array.isArray(data.nodes) && data.nodes.length ? data : null;
  } catch {
    return null;
  }
}
