// Side panels: the queue/history list (cancel, delete, load a past workflow), the gallery of
// recent outputs with a lightbox, the error panel, and toasts.

import {api} from "../api.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c != null) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export function toast(message, kind = "info", ms = 4000) {
  const host = document.getElementById("toasts");
  const item = el("div", {class: `toast ${kind}`, role: "status"}, message);
  host.append(item);
  setTimeout(() => item.remove(), ms);
}

function outputsOf(entry) {
  const files = [];
  for (const out of Object.values(entry.outputs || {})) {
    for (const f of out.images || []) files.push(f);
  }
  return files;
}

/** The queue (running, pending) and the history, refreshed on every status event. */
export class QueuePanel {
  constructor(app, root) {
    this.app = app;
    this.root = root;
    this.body = root.querySelector(".panel-body");
    root.querySelector("[data-action=clear-history]").addEventListener("click", async () => {
      await api.clearHistory();
      this.refresh();
    });
    api.addEventListener("status", () => this.refresh());
    api.addEventListener("execution_success", () => this.refresh());
    api.addEventListener("execution_error", () => this.refresh());
  }

  async refresh() {
    let queue, history;
    try {
      [queue, history] = await Promise.all([api.getQueue(), api.getHistory()]);
    } catch (e) {
      return;
    }
    const pending = queue.queue_pending || [];
    const running = queue.queue_running || [];
    this.app.setQueueCount(pending.length + running.length);
    const rows = [];
    for (const item of running) rows.push(this.queueRow(item, "running"));
    for (const item of [...pending].sort((a, b) => a[0] - b[0])) rows.push(this.queueRow(item, "pending"));
    const done = Object.entries(history || {}).reverse();
    for (const [id, entry] of done) rows.push(this.historyRow(id, entry));
    this.body.replaceChildren(...(rows.length ? rows : [el("div", {class: "empty"}, "Nothing queued yet")]));
  }

  queueRow(item, state) {
    const [number, promptId] = item;
    const cancel = el("button", {class: "small", "data-action": "cancel", onclick: async () => {
      if (state === "running") await api.interrupt(promptId);
      else await api.deleteQueueItem(promptId);
      this.refresh();
    }}, "Cancel");
    return el("div", {class: `qitem ${state}`, dataset: {promptId, state}},
      el("span", {class: "badge"}, state), el("span", {class: "qnum"}, `#${number}`), cancel);
  }

  historyRow(id, entry) {
    const status = (entry.status && entry.status.status_str) || "done";
    const thumbs = outputsOf(entry).slice(0, 4).map((f) => el("img", {src: api.viewURL(f), class: "thumb",
      onclick: () => this.app.gallery.open(api.viewURL(f))}));
    const extra = entry.prompt && entry.prompt[3];
    const workflow = extra && extra.extra_pnginfo && extra.extra_pnginfo.workflow;
    const load = workflow ? el("button", {class: "small", onclick: () => this.app.loadGraphData(workflow)}, "Load") : null;
    const del = el("button", {class: "small", onclick: async () => {
      await api.deleteHistoryItem(id);
      this.refresh();
    }}, "Delete");
    const number = entry.prompt ? `#${entry.prompt[0]}` : "";
    return el("div", {class: `qitem history ${status}`, dataset: {promptId: id, state: status}},
      el("span", {class: "badge"}, status), el("span", {class: "qnum"}, number),
      el("span", {class: "thumbs"}, thumbs), load, del);
  }
}

/** Recent output images; a click opens them large. */
export class Gallery {
  constructor(root, lightbox, limit = 48) {
    this.root = root;
    this.strip = root.querySelector(".panel-body");
    this.lightbox = lightbox;
    this.limit = limit;
    lightbox.addEventListener("click", () => { lightbox.hidden = true; });
  }

  add(items) {
    for (const item of items) {
      const img = el("img", {src: item.url, class: "gallery-item", title: item.file.filename,
        dataset: {node: item.node, filename: item.file.filename}, onclick: () => this.open(item.url)});
      this.strip.prepend(img);
    }
    while (this.strip.children.length > this.limit) this.strip.lastElementChild.remove();
    const empty = this.strip.querySelector(".empty");
    if (empty) empty.remove();
  }

  open(url) {
    const img = this.lightbox.querySelector("img");
    img.src = url;
    this.lightbox.querySelector("a").href = url;
    this.lightbox.hidden = false;
  }
}

/** Lists the current errors; a click on one centres its node. */
export class ErrorPanel {
  constructor(app, root) {
    this.app = app;
    this.root = root;
    root.querySelector("[data-action=close]").addEventListener("click", () => { root.hidden = true; });
  }

  render(rows, heading = "") {
    this.root.hidden = rows.length === 0 && !heading;
    if (!rows.length && !heading) return;
    const list = rows.map((r) => {
      const node = this.app.graph.getNodeById(Number(r.id));
      const name = node ? node.title : r.type || "node";
      const tb = r.traceback && r.traceback.length ? el("details", {}, el("summary", {}, "Traceback"),
        el("pre", {}, r.traceback.join(""))) : null;
      return el("div", {class: "error-row", dataset: {node: r.id}, onclick: () => this.app.focusNode(r.id)},
        el("div", {class: "error-node"}, `#${r.id} ${name}`),
        ...r.messages.map((m) => el("div", {class: "error-msg"}, m)), tb);
    });
    this.root.querySelector(".error-heading").textContent = heading;
    this.root.querySelector(".panel-body").replaceChildren(...list);
  }
}
