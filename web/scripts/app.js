// The editor application: one `app` object that owns the litegraph graph and canvas, loads node
// definitions and plugin extensions, queues prompts, and loads/saves workflows. Plugins import it
// as ComfyUI's do (`import {app} from "../../scripts/app.js"`) and call app.registerExtension().

/* global LiteGraph, LGraph, LGraphCanvas */
import {api} from "./api.js";
import {graphToApi, serializeGraph} from "./convert.js";
import {ExecutionState} from "./execution.js";
import {drawWithMode, installModes} from "./modes.js";
import {registerNodeDefs} from "./nodedefs.js";
import {ErrorPanel, Gallery, QueuePanel, toast} from "./ui/panels.js";
import {LibraryPanel, SearchBox} from "./ui/library.js";
import {installToolbar} from "./ui/toolbar.js";
import {installTooltips} from "./ui/tooltips.js";
import {applyControls} from "./widgets.js";
import {afterGraphConfigured, registerVirtualNodes} from "./virtual_nodes.js";
import {classify, fetchDefaultWorkflow, loadInto, readWorkflowFile, startAutosave, storedWorkflow} from "./workflow.js";

class App {
  constructor() {
    this.extensions = [];
    this.nodeDefs = {};
    this.graph = null;
    this.canvas = null;
    this.ready = false;
    this.configuringGraph = false;  // true while a file is loaded: virtual nodes wait for the whole graph
  }

  registerExtension(ext) {
    if (!ext || !ext.name) throw new Error("an extension needs a name");
    if (this.extensions.some((e) => e.name === ext.name)) throw new Error(`extension ${ext.name} is already registered`);
    this.extensions.push(ext);
  }

  /** Call `method` on every extension that has it; one failing extension never stops the page. */
  async invokeExtensions(method, ...args) {
    for (const ext of this.extensions) {
      if (typeof ext[method] !== "function") continue;
      try {
        await ext[method](...args);
      } catch (e) {
        console.warn(`extension ${ext.name}.${method} failed`, e);
        toast(`Extension ${ext.name} failed in ${method}: ${e.message}`, "error");
      }
    }
  }

  async loadExtensions() {
    const urls = (await api.getOptional("/extensions")) || [];
    await Promise.all(urls.map(async (url) => {
      try {
        await import(url);
      } catch (e) {
        console.warn(`could not load extension ${url}`, e);
        toast(`Could not load extension ${url}`, "error");
      }
    }));
  }

  createCanvas() {
    this.canvasEl = document.getElementById("graph-canvas");
    this.domHost = document.getElementById("dom-widgets");
    LiteGraph.release_link_on_empty_shows_menu = true;
    LiteGraph.alt_drag_do_clone_nodes = true;
    this.graph = new LGraph();
    this.canvas = new LGraphCanvas(this.canvasEl, this.graph);
    this.canvas.show_info = false;
    this.canvas.render_canvas_border = false;
    this.canvas.showSearchBox = (e, opts) => this.searchBox.open(e, opts);
    this.canvas.onDropItem = () => true;  // files are handled by the page's own drop handler
    this.execution = new ExecutionState(this);
    const drawNode = this.canvas.drawNode.bind(this.canvas);
    this.canvas.drawNode = (node, ctx) => {
      drawWithMode(this.canvas, node, () => drawNode(node, ctx));
      this.execution.decorate(node, ctx);
    };
    this.wrapFrameForDomWidgets();
    const resize = () => {
      const r = this.canvasEl.parentElement.getBoundingClientRect();
      this.canvasEl.width = r.width;
      this.canvasEl.height = r.height;
      this.canvas.setDirty(true, true);
    };
    // Panels opening and closing change the canvas box too, not only window resizes.
    new ResizeObserver(resize).observe(this.canvasEl.parentElement);
    resize();
  }

  /** Hide textarea widgets whose node was not drawn this frame (off screen, collapsed, removed). */
  wrapFrameForDomWidgets() {
    const draw = this.canvas.drawFrontCanvas.bind(this.canvas);
    this.canvas.drawFrontCanvas = () => {
      const doms = [];
      for (const node of this.graph._nodes) {
        for (const w of node.widgets || []) if (w.dom) { w.seen = false; doms.push(w); }
      }
      draw();
      for (const w of doms) if (!w.seen) w.dom.hidden = true;
    };
  }

  addNode(type, pos = null) {
    const node = LiteGraph.createNode(type);
    if (!node) return null;
    const ds = this.canvas.ds;
    node.pos = pos ? [pos[0], pos[1]] : [
      -ds.offset[0] + this.canvasEl.width / 2 / ds.scale - node.size[0] / 2,
      -ds.offset[1] + this.canvasEl.height / 2 / ds.scale - node.size[1] / 2];
    node.pos = this.keepInView(node.pos, node.size);
    this.graph.add(node);
    this.canvas.selectNode(node);
    return node;
  }

  /** `pos` moved so a node of `size` (title included) lies inside the visible canvas, where it fits:
   * a node added at a click near the right or bottom edge would otherwise land partly off-screen. */
  keepInView(pos, size) {
    const ds = this.canvas.ds;
    const margin = 10 / ds.scale;
    const left = -ds.offset[0] + margin;
    const top = -ds.offset[1] + LiteGraph.NODE_TITLE_HEIGHT + margin;
    const right = -ds.offset[0] + this.canvasEl.width / ds.scale - margin;
    const bottom = -ds.offset[1] + this.canvasEl.height / ds.scale - margin;
    return [Math.max(left, Math.min(pos[0], right - size[0])), Math.max(top, Math.min(pos[1], bottom - size[1]))];
  }

  focusNode(id) {
    const node = this.graph.getNodeById(Number(id));
    if (!node) return;
    this.canvas.centerOnNode(node);
    this.canvas.selectNode(node);
    this.canvas.setDirty(true, true);
  }

  /** The graph as ComfyUI's frontend sends it: {output: API prompt, workflow: UI json}. */
  graphToPrompt() {
    // Primitive nodes write their values into the widgets they drive first, as ComfyUI's do.
    for (const node of this.graph._nodes) if (node.applyToGraph) node.applyToGraph();
    return {output: graphToApi(this.graph), workflow: serializeGraph(this.graph)};
  }

  /** Queue the graph `count` times; control_after_generate is applied after each. */
  async queuePrompt(count = 1) {
    for (let i = 0; i < count; i++) {
      const {output, workflow} = this.graphToPrompt();
      // Clear before posting: a prompt that fails at once can report its execution_error over the
      // websocket before the POST reply is handled here, and that error must stay on its node.
      this.execution.clearErrors();
      try {
        const res = await api.queuePrompt(output, workflow);
        this.execution.ownPrompts.add(res.prompt_id);
        if (res.node_errors && Object.keys(res.node_errors).length) this.execution.showValidationErrors(res);
      } catch (e) {
        if (e.body && (e.body.node_errors || e.body.error)) this.execution.showValidationErrors(e.body);
        toast(e.message || "Queueing failed", "error");
        return false;
      }
      await this.invokeExtensions("afterQueued", this);
      applyControls(this.graph);
      this.canvas.setDirty(true, true);
    }
    this.queuePanel.refresh();
    return true;
  }

  clearRunState() {
    for (const node of this.graph._nodes) node.imgs = null;
    this.execution.nodeErrors = {};
    this.errorPanel.render([]);
  }

  /** Load a UI-format workflow (or an API prompt when `kind` is "api"). */
  loadGraphData(data, kind = "ui") {
    this.configuringGraph = true;
    let missing;
    try {
      missing = loadInto(this.graph, kind, data);
    } finally {
      this.configuringGraph = false;
    }
    afterGraphConfigured(this.graph);
    this.clearRunState();
    if (kind === "api") this.fitView();
    else if (data.extra && data.extra.ds && data.extra.ds.offset) {
      this.canvas.ds.offset = [...data.extra.ds.offset];
      this.canvas.ds.scale = data.extra.ds.scale || 1;
    }
    for (const node of this.graph._nodes) this.invokeExtensions("loadedGraphNode", node, this);
    if (missing.length) toast(`Missing node types: ${missing.join(", ")}`, "error", 8000);
    this.canvas.setDirty(true, true);
    return missing;
  }

  /** Zoom and pan so that every node is in view (not above 1:1). */
  fitView() {
    const nodes = this.graph._nodes;
    const ds = this.canvas.ds;
    if (!nodes.length) { ds.reset(); return; }
    const title = LiteGraph.NODE_TITLE_HEIGHT;
    const x0 = Math.min(...nodes.map((n) => n.pos[0])) - 30;
    const y0 = Math.min(...nodes.map((n) => n.pos[1] - title)) - 30;
    const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])) + 30;
    const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1])) + 30;
    ds.scale = Math.min(1, this.canvasEl.width / (x1 - x0), this.canvasEl.height / (y1 - y0));
    ds.offset = [-x0, -y0];
  }

  /** Load the server's default workflow (workflows/default.ui.json); an empty graph if it serves none. */
  async loadDefault() {
    const data = await fetchDefaultWorkflow(api);
    if (!data) {
      this.graph.clear();
      this.clearRunState();
      toast("The server offers no default workflow (workflows/default.ui.json)", "error", 8000);
      this.canvas.setDirty(true, true);
      return;
    }
    this.loadGraphData(data, "ui");
    if (!(data.extra && data.extra.ds && data.extra.ds.offset)) this.fitView();
  }

  /** A file opened or dropped: PNG with metadata, UI workflow, or API-format JSON. */
  async handleFile(file) {
    const result = await readWorkflowFile(file);
    if (result.error) {
      toast(result.error, "error");
      return false;
    }
    this.loadGraphData(result.data, result.kind);
    toast(`Loaded ${file.name}`, "info");
    return true;
  }

  loadJSON(data, name) {
    const result = classify(data, name);
    if (result.error) { toast(result.error, "error"); return false; }
    this.loadGraphData(result.data, result.kind);
    return true;
  }

  setQueueCount(n) {
    document.getElementById("queue-count").textContent = String(n);
  }

  toast(message, kind, ms) { toast(message, kind, ms); }

  installDrop() {
    document.addEventListener("dragover", (e) => e.preventDefault());
    document.addEventListener("drop", async (e) => {
      e.preventDefault();
      const type = e.dataTransfer.getData("application/x-diffgraph-node");
      if (type) {
        this.addNode(type, this.canvas.convertEventToCanvasOffset(e));
        return;
      }
      const file = e.dataTransfer.files && e.dataTransfer.files[0];
      if (file) await this.handleFile(file);
    });
  }

  async setup() {
    this.createCanvas();
    this.searchBox = new SearchBox(this);
    this.errorPanel = new ErrorPanel(this, document.getElementById("error-panel"));
    this.gallery = new Gallery(document.getElementById("gallery"), document.getElementById("lightbox"));
    this.queuePanel = new QueuePanel(this, document.getElementById("queue-panel"));
    this.library = new LibraryPanel(this, document.getElementById("library"));
    await this.loadExtensions();
    await this.invokeExtensions("init", this);
    this.nodeDefs = await api.getNodeDefs();
    await this.invokeExtensions("addCustomNodeDefs", this.nodeDefs, this);
    await registerNodeDefs(this.nodeDefs, this);
    registerVirtualNodes(this, this.nodeDefs);
    this.library.render();
    const stored = storedWorkflow();
    if (stored) this.loadGraphData(stored);
    else await this.loadDefault();
    startAutosave(this.graph);
    this.execution.listen();
    installToolbar(this);
    installModes(this);
    installTooltips(this);
    this.installDrop();
    api.connect();
    this.queuePanel.refresh();
    this.canvas.draw(true, true);
    await this.invokeExtensions("setup", this);
    this.ready = true;
    document.body.dataset.ready = "true";
  }
}

export const app = new App();
window.app = app;  // for plugins written against ComfyUI's global, and for debugging
