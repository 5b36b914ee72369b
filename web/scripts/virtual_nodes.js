// ComfyUI's frontend-only nodes, which the server never sees: Note and MarkdownNote (a text box),
// Reroute (a small pass-through node whose output adopts the type linked into it) and PrimitiveNode
// (primitive.js). They are registered next to the server's node types and listed under "utils".

/* global LiteGraph, LGraphNode, LGraphCanvas */
import {makePrimitiveNode} from "./primitive.js";
import {addInputWidget} from "./widgets.js";

const NOTE_COLORS = LGraphCanvas.node_colors.yellow;
const REROUTE_SIZE = [75, 26];

/** Search and library entries (in /object_info shape) for the frontend-only nodes. */
export const VIRTUAL_DEFS = {
  Note: {display_name: "Note", description: "A text note on the canvas; never sent to the server.",
         input: {required: {}}, output: []},
  MarkdownNote: {display_name: "Markdown Note", description: "A Markdown text note; never sent to the server.",
                 input: {required: {}}, output: []},
  Reroute: {display_name: "Reroute", description: "Passes one link through, to tidy long links.",
            input: {required: {input: ["*"]}}, output: ["*"]},
  PrimitiveNode: {display_name: "Primitive",
                  description: "One value that drives widgets converted to inputs on other nodes.",
                  input: {required: {}}, output: ["*"]},
};

function makeNoteNode(app, title) {
  class NoteNode extends LGraphNode {
    constructor(t) {
      super(t);
      this.color = NOTE_COLORS.color;
      this.bgcolor = NOTE_COLORS.bgcolor;
      this.properties.text = "";
      this.serialize_widgets = true;
      this.isVirtualNode = true;
      const w = addInputWidget(this, "text", "STRING", "STRING", {multiline: true, default: ""}, app);
      delete w.inputType;  // the note's text is no input of any server node
      delete w.inputSpec;
      w.fill = true;
      w.dom.classList.add("dg-note");
      this.size = [400, 160];
    }
  }
  NoteNode.title = title;
  return NoteNode;
}

/**
 * Give a chain of Reroute nodes the type of the real output feeding it, as ComfyUI does: every
 * reroute's output takes that type, and (outside of loading) real inputs downstream that cannot take
 * it are disconnected. Without a feeding output the chain is "*" again. Returns the feeding node.
 */
export function updateRerouteTypes(start, allowDisconnect) {
  const graph = start.graph;
  if (!graph) return null;
  const chain = new Set([start]);
  let inputType = null;
  let source = null;
  for (let cur = start; ;) {
    const link = cur.inputs[0] && graph.links[cur.inputs[0].link];
    const origin = link && graph.getNodeById(link.origin_id);
    if (!origin) break;
    if (origin.type !== "Reroute") {
      source = origin;
      inputType = (origin.outputs[link.origin_slot] || {}).type || null;
      break;
    }
    if (chain.has(origin)) break;  // a loop of reroutes feeds nothing
    chain.add(origin);
    cur = origin;
  }
  const stack = [...chain];
  const targets = [];
  while (stack.length) {
    const node = stack.pop();
    for (const id of (node.outputs[0] && node.outputs[0].links) || []) {
      const link = graph.links[id];
      const target = link && graph.getNodeById(link.target_id);
      if (!target) continue;
      if (target.type !== "Reroute") targets.push({target, slot: link.target_slot});
      else if (!chain.has(target)) { chain.add(target); stack.push(target); }
    }
  }
  const type = inputType && inputType !== "*" ? inputType : "*";
  if (type !== "*" && allowDisconnect) {
    for (const {target, slot} of targets) {
      const want = target.inputs[slot] && target.inputs[slot].type;
      if (want && !LiteGraph.isValidConnection(type, want)) target.disconnectInput(slot);
    }
  }
  for (const node of chain) node.outputs[0].type = type;
  graph.setDirtyCanvas(true, true);
  return source;
}

function makeRerouteNode(app) {
  let updating = false;
  class RerouteNode extends LGraphNode {
    constructor(t) {
      super(t);
      this.addInput("", "*");
      this.addOutput("", "*");
      this.size = REROUTE_SIZE.slice();
      this.isVirtualNode = true;
    }

    computeSize() { return REROUTE_SIZE.slice(); }

    onConnectionsChange() {
      if (app.configuringGraph || updating) return;
      updating = true;  // disconnecting a mismatched input calls back here
      try {
        const source = updateRerouteTypes(this, true);
        // A primitive feeding the chain learns its widget from the first input at the far end.
        if (source && source.type === "PrimitiveNode") {
          source.onConnectionsChange(LiteGraph.OUTPUT, 0, true);
          updateRerouteTypes(this, true);
        }
      } finally {
        updating = false;
      }
    }

    onAfterGraphConfigured() { updateRerouteTypes(this, false); }
  }
  RerouteNode.title = "Reroute";
  RerouteNode.title_mode = LiteGraph.NO_TITLE;
  RerouteNode.collapsable = false;
  return RerouteNode;
}

/**
 * Register the frontend-only node types (unless the server defines a type of that name) and list
 * them in `defs` for the search box and library.
 */
export function registerVirtualNodes(app, defs) {
  const classes = {
    Note: makeNoteNode(app, "Note"),
    MarkdownNote: makeNoteNode(app, "Markdown Note"),
    Reroute: makeRerouteNode(app),
    PrimitiveNode: makePrimitiveNode(app),
  };
  for (const [name, cls] of Object.entries(classes)) {
    if (defs[name]) continue;
    LiteGraph.registerNodeType(name, cls);
    cls.category = "utils";
    defs[name] = {...VIRTUAL_DEFS[name], name, category: "utils", output_node: false, virtual: true};
  }
}

/** Hooks that must wait until every node of a loaded file exists and is configured. */
export function afterGraphConfigured(graph) {
  for (const node of graph._nodes) {
    if (typeof node.onAfterGraphConfigured !== "function") continue;
    try {
      node.onAfterGraphConfigured();
    } catch (e) {
      console.warn(`node ${node.id} (${node.type}) failed after loading`, e);
    }
  }
}
