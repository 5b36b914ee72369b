// ComfyUI's frontend-only PrimitiveNode: one output that connects to widgets converted to inputs.
// On its first connection it takes on the target widget's type, options, value and a
// control_after_generate widget; its value is copied into every target and inlined into the API
// prompt (convert.js), and the node itself is never sent to the server.

/* global LiteGraph, LGraphNode */
import {fitWidgets, orderedInputs} from "./nodedefs.js";
import {CONTROL_VALUES, addControl, addInputWidget, widgetKind} from "./widgets.js";

const UNCONNECTED = "connect to widget input";
// Options that belong to the target node, not to a value box.
const DROPPED_OPTIONS = ["forceInput", "control_after_generate", "image_upload", "defaultInput"];

/** The declared [type, opts] of input `name` on a node built from /object_info, if any. */
function declaredSpec(node, name) {
  const def = node.constructor && node.constructor.nodeData;
  const found = def ? orderedInputs(def).find((i) => i.name === name) : null;
  return found ? [found.type, found.opts] : null;
}

/**
 * What a primitive linked to `input` of `node` becomes: {name, type, opts, value, control}, or null
 * when the input cannot hold a widget value. The live widget wins over the declaration, which wins
 * over the config older ComfyUI versions saved in the input itself.
 */
export function widgetSpecFor(node, input) {
  if (!input) return null;
  const name = (input.widget && input.widget.name) || input.name;
  const live = (node.widgets || []).find((w) => w.name === name && w.inputType);
  const saved = input.widget && Array.isArray(input.widget.config) ? input.widget.config : null;
  const spec = (live && live.inputSpec) || declaredSpec(node, name) || saved || [input.type, {}];
  let [type, opts] = [spec[0], {...(spec[1] || {})}];
  if (live && live.options && Array.isArray(live.options.values)) type = live.options.values.slice();
  for (const key of DROPPED_OPTIONS) delete opts[key];
  if (!widgetKind(type, opts)) return null;
  return {name, type, opts, value: live ? live.value : undefined,
          control: live && live.control ? live.control.value : undefined};
}

/** Whether a saved value fits a widget: a file's value for another type or choice is not restored. */
function fits(w, value) {
  if (w.isControl) return CONTROL_VALUES.includes(value);
  if (w.type === "number") return typeof value === "number";
  if (w.type === "combo") return w.options.values.includes(value);
  if (w.type === "toggle") return typeof value === "boolean";
  return typeof value === "string";
}

/** Two specs a single primitive can drive: same kind, and the same choices for combos. */
function compatible(a, b) {
  const ka = widgetKind(a.type, a.opts), kb = widgetKind(b.type, b.opts);
  if (ka !== kb) return false;
  if (ka !== "COMBO") return true;
  const va = Array.isArray(a.type) ? a.type : a.opts.options;
  const vb = Array.isArray(b.type) ? b.type : b.opts.options;
  return JSON.stringify(va) === JSON.stringify(vb);
}

export function makePrimitiveNode(app) {
  class PrimitiveNode extends LGraphNode {
    constructor(title) {
      super(title);
      this.addOutput(UNCONNECTED, "*");
      this.serialize_widgets = true;
      this.isVirtualNode = true;
    }

    /** Links to real inputs fed by this node, first link first, through any Reroute chain. */
    targetLinks() {
      const out = [];
      const queue = [...((this.outputs[0] && this.outputs[0].links) || [])];
      const seen = new Set();
      while (queue.length) {
        const link = this.graph && this.graph.links[queue.shift()];
        if (!link || seen.has(link.id)) continue;
        seen.add(link.id);
        const node = this.graph.getNodeById(link.target_id);
        if (!node) continue;
        if (node.type === "Reroute") queue.push(...((node.outputs[0] && node.outputs[0].links) || []));
        else out.push({node, input: node.inputs && node.inputs[link.target_slot]});
      }
      return out;
    }

    /** Copy the value into every target widget (ComfyUI does this before serialising a prompt). */
    applyToGraph() {
      if (!this.widgets || !this.widgets.length) return;
      const value = this.widgets[0].value;
      for (const {node, input} of this.targetLinks()) {
        const name = input && ((input.widget && input.widget.name) || input.name);
        const w = (node.widgets || []).find((x) => x.name === name && x.inputType);
        if (w) w.value = value;
      }
    }

    onConnectOutput(slot, type, input, target) {
      if (target.type === "Reroute") return true;
      const spec = widgetSpecFor(target, input);
      if (!spec) return false;
      if (!this.widgets || !this.widgets.length) return true;
      return compatible(this.spec, spec);
    }

    onConnectionsChange(type, index, connected) {
      if (type !== LiteGraph.OUTPUT || app.configuringGraph) return;
      const links = this.outputs[0].links;
      if (connected && links && links.length) {
        // A pasted primitive keeps its copied values; a new one takes the target's.
        if (!this.widgets || !this.widgets.length) {
          if (this.adoptFirstTarget(!this.widgets_values)) this.restoreSaved();
        } else {
          this.applyToGraph();
        }
      } else if (!connected && !(links && links.length)) {
        this.dropWidgets();
      }
    }

    /** After a file was loaded: rebuild the widgets from the first target and restore saved values. */
    onAfterGraphConfigured() {
      if (this.widgets && this.widgets.length) return;
      if (this.adoptFirstTarget(false)) this.restoreSaved();
    }

    /** Put the values a file or the clipboard gave this node (widgets_values) into its widgets. */
    restoreSaved() {
      const saved = this.widgets_values;
      if (!Array.isArray(saved)) return;
      this.widgets.forEach((w, i) => {
        if (i < saved.length && fits(w, saved[i])) w.value = saved[i];
      });
      this.applyToGraph();
    }

    adoptFirstTarget(fit) {
      for (const {node, input} of this.targetLinks()) {
        const spec = widgetSpecFor(node, input);
        if (spec) { this.createWidgets(spec, fit); return true; }
      }
      return false;
    }

    /** The value widget (and its control) for `spec`; `fit` widens the node to show them. */
    createWidgets(spec, fit) {
      const kind = widgetKind(spec.type, spec.opts);
      const [oldW, oldH] = this.size;
      this.spec = spec;
      const out = this.outputs[0];
      out.type = kind;
      out.name = kind;
      out.widget = {name: spec.name};
      const w = addInputWidget(this, "value", kind, spec.type, spec.opts, app);
      if (spec.value !== undefined) w.value = spec.value;
      if (w.type === "number" || w.type === "combo") {
        const control = addControl(this, w);
        control.value = CONTROL_VALUES.includes(spec.control) ? spec.control : "fixed";
        if (w.type === "combo") {
          control.filter = this.addWidget("text", "control_filter_list", "", () => {}, {});
          control.filter.tooltip = "Only these choices are stepped through (a substring or /regex/)";
        }
      }
      const callback = w.callback;
      const self = this;
      w.callback = function (...args) {
        const r = callback ? callback.apply(this, args) : undefined;
        self.applyToGraph();
        return r;
      };
      const size = this.computeSize();
      this.setSize([Math.max(oldW, size[0]), Math.max(oldH, size[1])]);
      if (fit) fitWidgets(this);
      this.applyToGraph();
    }

    dropWidgets() {
      for (const w of this.widgets || []) if (w.onRemove) w.onRemove();
      this.widgets = [];
      this.spec = null;
      this.widgets_values = null;  // values of the old target do not carry over to the next one
      const out = this.outputs[0];
      out.type = "*";
      out.name = UNCONNECTED;
      delete out.widget;
      this.setSize(this.computeSize());
    }

    /** Keep a file's values when the node could not rebuild its widgets (its target is missing). */
    onSerialize(o) {
      if ((!this.widgets || !this.widgets.length) && Array.isArray(this.widgets_values)) {
        o.widgets_values = this.widgets_values.slice();
      }
    }
  }
  PrimitiveNode.title = "Primitive";
  return PrimitiveNode;
}
