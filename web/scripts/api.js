// The page's only link to the server: ComfyUI's HTTP routes (under /api/) and the /ws event stream.
// `api` is an EventTarget: every websocket message {type, data} is re-dispatched as a CustomEvent
// named after its type (status, executing, progress, executed, execution_error, ...), as ComfyUI's
// frontend does, so plugin extensions can `api.addEventListener("executed", ...)`.

const CLIENT_ID_KEY = "diffgraph.clientId";
const RECONNECT_MS = 1000;

function newClientId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
  return Math.random().toString(16).slice(2) + Date.now().toString(16);
}

/** An HTTP error that keeps the parsed JSON body (ComfyUI's 400 carries node_errors). */
export class ApiError extends Error {
  constructor(status, body, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

class Api extends EventTarget {
  constructor() {
    super();
    // One id per tab: sessionStorage survives a reload but not a second tab sharing the events.
    this.clientId = sessionStorage.getItem(CLIENT_ID_KEY) || newClientId();
    sessionStorage.setItem(CLIENT_ID_KEY, this.clientId);
    this.socket = null;
    this.connected = false;
    this._closing = false;
    const params = new URLSearchParams(location.search);
    this.token = params.get("token") || "";
  }

  /** Absolute URL for an API route such as "/prompt" (mounted under /api as in ComfyUI). */
  apiURL(route) {
    return "/api" + route;
  }

  /** A URL usable in <img src> for an output file descriptor {filename, subfolder, type}. */
  viewURL(file) {
    const q = new URLSearchParams({filename: file.filename, subfolder: file.subfolder || "",
                                   type: file.type || "output"});
    if (this.token) q.set("token", this.token);
    return this.apiURL("/view?" + q.toString());
  }

  async fetchApi(route, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (this.token) headers["Authorization"] = "token " + this.token;
    return fetch(this.apiURL(route), {...options, headers, cache: "no-store"});
  }

  async getJSON(route) {
    const res = await this.fetchApi(route);
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, body);
    return body;
  }

  async postJSON(route, payload) {
    // Always JSON: the server refuses state changes without it (CSRF guard).
    const res = await this.fetchApi(route, {method: "POST", headers: {"Content-Type": "application/json"},
                                            body: JSON.stringify(payload ?? {})});
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = text; }
    if (!res.ok) {
      const msg = body && body.error ? (body.error.message || String(body.error)) : `HTTP ${res.status}`;
      throw new ApiError(res.status, body, msg);
    }
    return body;
  }

  getNodeDefs() { return this.getJSON("/object_info"); }
  getExtensions() { return this.getJSON("/extensions"); }
  getQueue() { return this.getJSON("/queue"); }
  getHistory(maxItems = 64) { return this.getJSON(`/history?max_items=${maxItems}`); }

  /** POST /prompt. Resolves to {prompt_id, number, node_errors}; rejects with ApiError on 400. */
  queuePrompt(prompt, workflow, extra = {}) {
    return this.postJSON("/prompt", {prompt, client_id: this.clientId,
                                     extra_data: {extra_pnginfo: {workflow}}, ...extra});
  }

  deleteQueueItem(promptId) { return this.postJSON("/queue", {delete: [promptId]}); }
  clearQueue() { return this.postJSON("/queue", {clear: true}); }
  deleteHistoryItem(promptId) { return this.postJSON("/history", {delete: [promptId]}); }
  clearHistory() { return this.postJSON("/history", {clear: true}); }
  interrupt(promptId) { return this.postJSON("/interrupt", promptId ? {prompt_id: promptId} : {}); }

  /** Optional routes: resolve to null when the server does not have them. */
  async getOptional(route) {
    try {
      const res = await this.fetchApi(route);
      if (!res.ok) return null;
      return await res.json();
    } catch {
      return null;
    }
  }

  connect() {
    this._closing = false;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams({clientId: this.clientId});
    if (this.token) q.set("token", this.token);
    const socket = new WebSocket(`${proto}//${location.host}/ws?${q}`);
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", () => {
      this.connected = true;
      this.dispatchEvent(new CustomEvent("connected"));
    });
    socket.addEventListener("message", (ev) => this._onMessage(ev));
    socket.addEventListener("close", () => {
      const was = this.connected;
      this.connected = false;
      if (was) this.dispatchEvent(new CustomEvent("disconnected"));
      if (!this._closing) setTimeout(() => this.connect(), RECONNECT_MS);
    });
    this.socket = socket;
  }

  close() {
    this._closing = true;
    if (this.socket) this.socket.close();
  }

  _onMessage(ev) {
    if (typeof ev.data !== "string") {
      this._onBinary(ev.data);
      return;
    }
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (!msg || typeof msg.type !== "string") return;
    if (msg.type === "status" && msg.data && msg.data.sid) {
      this.clientId = msg.data.sid;
      sessionStorage.setItem(CLIENT_ID_KEY, this.clientId);
    }
    this.dispatchEvent(new CustomEvent(msg.type, {detail: msg.data || {}}));
  }

  _onBinary(buffer) {
    // ComfyUI's preview frame: uint32 event type (1 = preview image), uint32 format (1 JPEG, 2 PNG), bytes.
    const view = new DataView(buffer);
    if (buffer.byteLength < 8 || view.getUint32(0) !== 1) return;
    const mime = view.getUint32(4) === 2 ? "image/png" : "image/jpeg";
    const blob = new Blob([buffer.slice(8)], {type: mime});
    this.dispatchEvent(new CustomEvent("b_preview", {detail: blob}));
  }
}

export const api = new Api();
