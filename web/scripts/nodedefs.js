// Turns /object_info into litegraph node types: typed input slots and outputs, widgets in
// input_order, categories for the Add Node menu, tooltips, "convert widget to input", and the
// drawing of output images on SaveImage/PreviewImage-style nodes.

/* global LiteGraph, LGraphNode */
import {addInputWidget, widgetKind} from "./widgets.js";

const MIN_NODE_WIDTH = 240;

/** The declared inputs of a node definition in display order: [{name, type, opts, optional}]. */
export function orderedInputs(def) {
  const out = [];
  for (const section of ["required", "optional"]) {
    const specs = (def.input && def.input[section]) || {};
    const order = (def.input_order && def.input_order[section]) || Object.keys(specs);
    for (const name of order) {
      const spec = specs[name];
      if (!spec) continue;
      const [type, opts] = Array.isArray(spec) ? [spec[0], spec[1] || {}] : [spec, {}];
      out.push({name, type, opts, optional: section === "optional"});
    }
  }
  return out;
}

function buildNode(node, def, app) {
  for (const input of orderedInputs(def)) {
    const kind = widgetKind(input.type, input.opts);
    if (kind) {
      addInputWidget(node, input.name, kind, input.type, input.opts, app);
    } else {
      const type = Array.isArray(input.type) ? "COMBO" : String(input.type);
      const slot = node.addInput(input.name, type === "*" ? "*" : type);
      if (input.opts.tooltip) slot.tooltip = input.opts.tooltip;
      if (input.optional) slot.shape = LiteGraph.CIRCLE_SHAPE;
    }
  }
  (def.output || []).forEach((type, i) => {
    const t = Array.isArray(type) ? "COMBO" : String(type);
    const name = (def.output_name && def.output_name[i]) || t;
    const slot = node.addOutput(name, t === "*" ? "*" : t);
    const tip = def.output_tooltips && def.output_tooltips[i];
    if (tip) slot.tooltip = tip;
    if (def.output_is_list && def.output_is_list[i]) slot.shape = LiteGraph.GRID_SHAPE;
  });
  const size = node.computeSize();
  node.size = [Math.max(MIN_NODE_WIDTH, size[0], widgetsWidth(node)), size[1]];
}

/** Widen a node so its widgets' labels and current values fit (after values were set from outside). */
export function fitWidgets(node) {
  const w = widgetsWidth(node);
  if (node.size[0] < w) node.setSize([w, node.size[1]]);
}

/** A width at which each widget's label and (longest) value fit side by side. */
function widgetsWidth(node) {
  let chars = 0;
  for (const w of node.widgets || []) {
    const values = w.type === "combo" ? w.options.values : [w.value];
    const longest = Math.min(40, Math.max(0, ...values.map((v) => String(v ?? "").length)));
    if (w.type !== "customtext") chars = Math.max(chars, w.name.length + longest);
  }
  return chars * 7.5 + 80;
}

/** Hide a widget and add an input slot in its place (ComfyUI's "convert to input"). */
export function convertWidgetToInput(node, widget, addSlot = true) {
  if (widget.hiddenAsInput) return;
  widget.hiddenAsInput = true;
  widget.origType = widget.type;
  widget.origComputeSize = widget.computeSize;
  widget.type = "converted-widget";
  widget.computeSize = () => [0, -4];
  if (widget.control) {
    widget.control.origType = widget.control.type;
    widget.control.type = "converted-widget";
    widget.control.computeSize = () => [0, -4];
  }
  if (addSlot) node.addInput(widget.name, widget.inputType, {widget: {name: widget.name}});
  node.setSize([node.size[0], node.computeSize()[1]]);
}

/** Undo convertWidgetToInput: drop the slot (and its link) and show the widget again. */
export function convertInputToWidget(node, widget) {
  if (!widget.hiddenAsInput) return;
  const idx = (node.inputs || []).findIndex((i) => i.widget && i.widget.name === widget.name);
  if (idx >= 0) {
    if (node.inputs[idx].link != null) node.disconnectInput(idx);
    node.removeInput(idx);
  }
  widget.hiddenAsInput = false;
  widget.type = widget.origType;
  widget.computeSize = widget.origComputeSize;
  if (widget.control) {
    widget.control.type = widget.control.origType;
    delete widget.control.computeSize;
  }
  node.setSize([node.size[0], node.computeSize()[1]]);
}

function widgetMenu(node) {
  const items = [];
  for (const w of node.widgets || []) {
    if (!w.inputType || w.isControl) continue;
    if (w.hiddenAsInput) {
      items.push({content: `Convert ${w.name} to widget`, callback: () => convertInputToWidget(node, w)});
    } else {
      items.push({content: `Convert ${w.name} to input`, callback: () => convertWidgetToInput(node, w)});
    }
  }
  return items;
}

/** Re-hide widgets whose inputs were saved as converted (runs after configure from a file). */
function restoreConvertedWidgets(node) {
  const widgetInputs = (node.inputs || []).filter((i) => i.widget && i.widget.name);
  const realWidgets = (node.widgets || []).filter((w) => w.inputType && !w.isControl);
  // Newer ComfyUI frontends give every widget a socket; there only the linked ones are "inputs".
  const everyWidget = realWidgets.length > 0 && realWidgets.every((w) => widgetInputs.some((i) => i.widget.name === w.name));
  for (const input of widgetInputs) {
    const w = realWidgets.find((x) => x.name === input.widget.name);
    if (!w) continue;
    if (everyWidget && input.link == null) {
      node.inputs.splice(node.inputs.indexOf(input), 1);
      continue;
    }
    input.type = w.inputType;
    convertWidgetToInput(node, w, false);
  }
  // Removing sockets moved the later ones: their links must point at the new slot numbers.
  const links = node.graph ? node.graph.links : null;
  (node.inputs || []).forEach((input, slot) => {
    if (links && input.link != null && links[input.link]) links[input.link].target_slot = slot;
  });
}

/**
 * Older ComfyUI exports stored the seed's control value as a boolean, or left it out entirely;
 * map them onto our widgets so the values after the seed are not shifted by one.
 */
function fixLegacyWidgetValues(node, values) {
  if (!Array.isArray(values) || !node.widgets) return;
  const controls = node.widgets.filter((w) => w.isControl);
  if (!controls.length) return;
  if (values.length === node.widgets.length - controls.length) {
    let i = 0;
    for (const w of node.widgets) {
      if (w.isControl) w.value = "fixed";
      else if (i < values.length) w.value = values[i++];
    }
    return;
  }
  for (const w of controls) {
    if (w.value === true) w.value = "randomize";
    else if (w.value === false || !["fixed", "increment", "decrement", "randomize"].includes(w.value)) w.value = "fixed";
  }
}

function drawImages(node, ctx) {
  if (!node.imgs || !node.imgs.length || node.flags.collapsed) return;
  const top = imageAreaTop(node);
  const areaH = node.size[1] - top - 4;
  const areaW = node.size[0] - 8;
  if (areaH < 16) return;
  // One image fills the area; a batch is laid out as a grid, as ComfyUI does.
  const n = node.imgs.length;
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const cellW = areaW / cols, cellH = areaH / rows;
  ctx.save();
  ctx.imageSmoothingEnabled = false;  // small outputs stay crisp when scaled up
  node.imgs.forEach((img, i) => {
    if (!img.complete || !img.naturalWidth) return;
    const s = Math.min(cellW / img.naturalWidth, cellH / img.naturalHeight) * (n > 1 ? 0.96 : 1);
    const w = img.naturalWidth * s, h = img.naturalHeight * s;
    const x = 4 + (i % cols) * cellW + (cellW - w) / 2;
    const y = top + Math.floor(i / cols) * cellH + (cellH - h) / 2;
    ctx.drawImage(img, x, y, w, h);
  });
  ctx.restore();
}

/** Height of slots and widgets: images are drawn below it. */
export function imageAreaTop(node) {
  const slots = Math.max((node.inputs || []).length, (node.outputs || []).length);
  let y = slots * LiteGraph.NODE_SLOT_HEIGHT + 6;
  for (const w of node.widgets || []) {
    y += (w.computeSize ? w.computeSize(node.size[0])[1] : LiteGraph.NODE_WIDGET_HEIGHT) + 4;
  }
  return y + 4;
}

/** Show output images on a node: grow it so they are visible. */
export function setNodeImages(node, urls) {
  node.imgs = urls.map((url) => {
    const img = new Image();
    img.onload = () => node.graph && node.graph.setDirtyCanvas(true, true);
    img.src = url;
    return img;
  });
  const minH = imageAreaTop(node) + 220;
  if (node.size[1] < minH) node.setSize([Math.max(node.size[0], 256), minH]);
}

function makeNodeClass(name, def, app) {
  class DiffgraphNode extends LGraphNode {
    constructor(title) {
      super(title);
      this.serialize_widgets = true;
      this.comfyClass = name;
      this.isOutputNode = Boolean(def.output_node);
      buildNode(this, def, app);
      this.properties["Node name for S&R"] = name;
    }

    onNodeCreated() { app.invokeExtensions("nodeCreated", this, app); }

    onConfigure(info) {
      fixLegacyWidgetValues(this, info.widgets_values);
      restoreConvertedWidgets(this);
    }

    onDrawBackground(ctx) { drawImages(this, ctx); }

    getExtraMenuOptions(canvas, options) {
      const extra = widgetMenu(this);
      (this.imgs || []).forEach((img, i) => {
        extra.push({content: `Open image ${i + 1}`, callback: () => window.open(img.src, "_blank")});
      });
      options.unshift(...extra, ...(extra.length ? [null] : []));
    }
  }
  DiffgraphNode.title = def.display_name || name;
  DiffgraphNode.comfyClass = name;
  DiffgraphNode.nodeData = def;
  DiffgraphNode.description = def.description || "";
  return DiffgraphNode;
}

/** Register every node type of /object_info with litegraph; extensions may patch each class first. */
export async function registerNodeDefs(defs, app) {
  for (const [name, def] of Object.entries(defs)) {
    const cls = makeNodeClass(name, def, app);
    await app.invokeExtensions("beforeRegisterNodeDef", cls, def, app);
    LiteGraph.registerNodeType(name, cls);
    cls.category = def.category || "uncategorized";  // registerNodeType derives it from the name
  }
}
