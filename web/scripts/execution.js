// What the running prompt looks like on the canvas: the executing node outlined with its step
// progress, output images on the nodes that produced them, and validation or execution errors
// drawn on the nodes that caused them (also listed in the error panel).

/* global LiteGraph */
import {api} from "./api.js";
import {setNodeImages} from "./nodedefs.js";

const RUNNING = "#3fcf5f";
const ERROR = "#ff4a4a";

/** Per-page execution state, read by the drawing code and by the tests. */
export class ExecutionState {
  constructor(app) {
    this.app = app;
    this.runningNodeId = null;
    this.runningPromptId = null;
    this.progress = null;          // {node, value, max}
    this.nodeErrors = {};          // node id -> {messages: [..], inputs: Set(names)}
    this.executed = {};            // node id -> ui output of the last run
    this.ownPrompts = new Set();   // prompt ids queued from this tab
  }

  clearErrors() {
    this.nodeErrors = {};
    this.app.errorPanel.render([]);
    this.app.canvas.setDirty(true, true);
  }

  /** Mark nodes from a 400 reply's node_errors ({id: {errors: [{message, details, extra_info}]}}). */
  showValidationErrors(body) {
    this.nodeErrors = {};
    const rows = [];
    for (const [id, entry] of Object.entries((body && body.node_errors) || {})) {
      const messages = [];
      const inputs = new Set();
      for (const err of entry.errors || []) {
        const input = err.extra_info && err.extra_info.input_name;
        if (input) inputs.add(input);
        messages.push(err.details ? `${err.message}: ${err.details}` : err.message);
      }
      this.nodeErrors[id] = {messages, inputs};
      rows.push({id, type: entry.class_type, messages});
    }
    const top = body && body.error ? (body.error.message || String(body.error)) : "Prompt failed validation";
    this.app.errorPanel.render(rows, top);
    this.app.canvas.setDirty(true, true);
  }

  showExecutionError(d) {
    const id = String(d.node_id);
    const message = `${d.exception_type || "Error"}: ${d.exception_message || ""}`.trim();
    this.nodeErrors = {[id]: {messages: [message], inputs: new Set(), traceback: d.traceback || []}};
    this.app.errorPanel.render([{id, type: d.node_type, messages: [message], traceback: d.traceback || []}],
                               "Execution failed");
    this.app.canvas.setDirty(true, true);
  }

  listen() {
    api.addEventListener("execution_start", (e) => {
      this.runningPromptId = e.detail.prompt_id;
      if (this.ownPrompts.has(e.detail.prompt_id)) this.clearErrors();
    });
    api.addEventListener("executing", (e) => {
      const node = e.detail.node;
      this.runningNodeId = node == null ? null : String(node);
      this.progress = null;
      if (node == null) this.runningPromptId = null;
      this.app.canvas.setDirty(true, true);
    });
    api.addEventListener("progress", (e) => {
      this.progress = {node: String(e.detail.node ?? this.runningNodeId), value: e.detail.value, max: e.detail.max};
      this.app.canvas.setDirty(true, true);
    });
    api.addEventListener("executed", (e) => this.onExecuted(e.detail));
    api.addEventListener("execution_error", (e) => this.showExecutionError(e.detail));
    api.addEventListener("execution_interrupted", () => {
      this.runningNodeId = null;
      this.progress = null;
      this.app.toast("Interrupted", "info");
    });
    api.addEventListener("b_preview", (e) => {
      const node = this.runningNodeId && this.app.graph.getNodeById(Number(this.runningNodeId));
      if (node) setNodeImages(node, [URL.createObjectURL(e.detail)]);
    });
  }

  onExecuted(d) {
    const id = String(d.display_node ?? d.node);
    this.executed[id] = d.output;
    const images = (d.output && d.output.images) || [];
    if (!images.length) return;
    const urls = images.map((f) => api.viewURL(f));
    const node = this.app.graph.getNodeById(Number(id));
    if (node) setNodeImages(node, urls);
    this.app.gallery.add(images.map((f, i) => ({url: urls[i], file: f, node: id, promptId: d.prompt_id})));
  }

  /** Draw running/error decorations over one node; ctx is in node space. */
  decorate(node, ctx) {
    const id = String(node.id);
    const title = LiteGraph.NODE_TITLE_HEIGHT;
    const [w, h] = node.flags.collapsed ? [node._collapsed_width || 120, 0] : node.size;
    const err = this.nodeErrors[id];
    if (id === this.runningNodeId || err) {
      ctx.save();
      ctx.lineWidth = 3;
      ctx.strokeStyle = err ? ERROR : RUNNING;
      ctx.beginPath();
      ctx.roundRect ? ctx.roundRect(-5, -title - 5, w + 10, h + title + 10, 10) : ctx.rect(-5, -title - 5, w + 10, h + title + 10);
      ctx.stroke();
      ctx.restore();
    }
    if (id === this.runningNodeId && this.progress && this.progress.node === id && this.progress.max) {
      ctx.fillStyle = RUNNING;
      ctx.fillRect(0, -3, (w * this.progress.value) / this.progress.max, 3);
      ctx.fillStyle = "#fff";
      ctx.font = "11px sans-serif";
      ctx.textAlign = "right";
      ctx.fillText(`${this.progress.value}/${this.progress.max}`, w - 6, -title + 14);
      ctx.textAlign = "left";
    }
    if (err && !node.flags.collapsed) this.drawErrorText(node, ctx, err, w, h);
  }

  drawErrorText(node, ctx, err, w, h) {
    (node.inputs || []).forEach((input, i) => {
      if (!err.inputs.has(input.name)) return;
      const p = node.getConnectionPos(true, i);
      ctx.strokeStyle = ERROR;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(p[0] - node.pos[0], p[1] - node.pos[1], 7, 0, Math.PI * 2);
      ctx.stroke();
    });
    ctx.font = "12px sans-serif";
    const lines = err.messages.slice(0, 4);
    const boxH = lines.length * 16 + 8;
    ctx.fillStyle = "rgba(90,10,10,0.92)";
    ctx.fillRect(0, h + 8, w, boxH);
    ctx.fillStyle = "#ffd6d6";
    lines.forEach((line, i) => {
      const text = line.length > 60 ? line.slice(0, 57) + "..." : line;
      ctx.fillText(text, 6, h + 24 + i * 16);
    });
  }
}
