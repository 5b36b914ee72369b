// Workflows in and out of the editor: the server's default graph, the copy kept in
// localStorage across reloads, UI-format 0.4 files saved and loaded, API-format JSON opened, PNG
// files restored from their "workflow" (or "prompt") text chunk, and the examples menu's files.

/* global LiteGraph */
import {apiToGraph, isApiPrompt, serializeGraph} from "./convert.js";
import {parseLooseJSON, readPngText} from "./png.js";

export const STORAGE_KEY = "diffgraph.workflow";
// The default graph is the server's workflows/default.ui.json (GET /api/workflows/default.ui.json): one
// source for the editor, `scripts/run.sh` and the README, never a second copy here that could drift.
export const DEFAULT_WORKFLOW = "default.ui.json";

/** The server's default UI-format workflow, or null when it serves none. */
export async function fetchDefaultWorkflow(api) {
  const data = await api.getOptional(`/workflows/${DEFAULT_WORKFLOW}`);
  return data && Array.isArray(data.nodes) ? data : null;
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
