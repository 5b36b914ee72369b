// The top bar: Queue with batch count, Interrupt, the workflow menu (new, default, save, open,
// examples from the server's /api/workflows when it has that route), panel toggles, and the
// connection / queue status.

import {api} from "../api.js";
import {downloadJSON} from "../workflow.js";
import {el, toast} from "./panels.js";

function bind(id, fn) {
  document.getElementById(id).addEventListener("click", fn);
}

function togglePanel(id, app) {
  const panel = document.getElementById(id);
  panel.hidden = !panel.hidden;
  if (id === "queue-panel" && !panel.hidden) app.queuePanel.refresh();
}

/**
 * Example workflows, when the server's /features says it serves them: GET /api/workflows lists names
 * (or {name} objects), GET /api/workflows/{name} is one file. Asking only then keeps 404s out of the console.
 */
async function installExamples(app) {
  const features = await api.getOptional("/features");
  const list = features && features.example_workflows ? await api.getOptional("/workflows") : null;
  const menu = document.getElementById("examples-menu");
  const names = Array.isArray(list) ? list.map((x) => (typeof x === "string" ? x : x && (x.name || x.filename)))
    .filter(Boolean) : [];
  if (!names.length) {
    document.getElementById("examples-item").hidden = true;
    return;
  }
  menu.replaceChildren(...names.map((name) => el("button", {class: "menu-item", dataset: {example: name},
    onclick: async () => {
      const data = await api.getOptional(`/workflows/${encodeURIComponent(name)}`);
      if (!data) { toast(`Could not load example ${name}`, "error"); return; }
      if (app.loadJSON(data, name)) toast(`Loaded example ${name}`, "info");
      closeMenus();
    }}, name.replace(/\.json$/, ""))));
}

function closeMenus() {
  for (const m of document.querySelectorAll(".menu[open]")) m.open = false;
}

function saveWorkflow(app) {
  const name = window.prompt("Save workflow as:", app.workflowName || "workflow");
  if (!name) return;
  app.workflowName = name.replace(/\.json$/, "");
  downloadJSON(app.graphToPrompt().workflow, `${app.workflowName}.json`);
}

function exportApi(app) {
  downloadJSON(app.graphToPrompt().output, `${app.workflowName || "workflow"}.api.json`);
}

export function installToolbar(app) {
  const batch = document.getElementById("batch-count");
  bind("queue-button", () => {
    const n = Math.max(1, Math.min(100, parseInt(batch.value, 10) || 1));
    app.queuePrompt(n);
  });
  bind("interrupt-button", () => api.interrupt(app.execution.runningPromptId));
  bind("menu-new", () => { app.graph.clear(); app.clearRunState(); closeMenus(); });
  bind("menu-default", () => { app.loadDefault(); closeMenus(); });
  bind("menu-save", () => { closeMenus(); saveWorkflow(app); });
  bind("menu-export-api", () => { closeMenus(); exportApi(app); });
  const fileInput = document.getElementById("file-input");
  bind("menu-open", () => { closeMenus(); fileInput.click(); });
  fileInput.addEventListener("change", async () => {
    if (fileInput.files.length) await app.handleFile(fileInput.files[0]);
    fileInput.value = "";
  });
  bind("toggle-queue", () => togglePanel("queue-panel", app));
  bind("toggle-gallery", () => togglePanel("gallery", app));
  bind("toggle-library", () => togglePanel("library", app));
  document.addEventListener("mousedown", (e) => {
    if (!e.target.closest(".menu")) closeMenus();
  });
  const conn = document.getElementById("connection");
  api.addEventListener("connected", () => { conn.className = "online"; conn.title = "Connected"; });
  api.addEventListener("disconnected", () => { conn.className = "offline"; conn.title = "Reconnecting"; });
  api.addEventListener("status", (e) => {
    const s = e.detail.status;
    if (s && s.exec_info) app.setQueueCount(s.exec_info.queue_remaining);
  });
  installExamples(app);
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey && e.key === "Enter" && !e.target.closest("textarea, input")) {
      e.preventDefault();
      app.queuePrompt(1);
    }
  });
}
