// Hover tooltips on the canvas: a node's description over its title, an input or output's
// tooltip over its slot, a widget's tooltip over the widget (all from /object_info).

/* global LiteGraph */

const DELAY_MS = 400;

/** The tooltip text under canvas position `pos` ([x, y] in graph space), or "". */
export function tooltipAt(graph, pos) {
  const node = graph.getNodeOnPos(pos[0], pos[1]);
  if (!node) return "";
  const x = pos[0] - node.pos[0];
  const y = pos[1] - node.pos[1];
  const def = node.constructor.nodeData;
  if (y < 0) return def ? def.description || def.display_name || "" : "";
  const slot = node.getSlotInPosition(pos[0], pos[1]);
  if (slot) {
    const s = slot.input || slot.output;
    if (s && s.tooltip) return s.tooltip;
    if (slot.input && def) return specTooltip(def, slot.input.name);
    return "";
  }
  for (const w of node.widgets || []) {
    if (w.last_y === undefined || w.hiddenAsInput) continue;
    const h = w.computeSize ? w.computeSize(node.size[0])[1] : LiteGraph.NODE_WIDGET_HEIGHT;
    if (y >= w.last_y && y <= w.last_y + h && x > 6 && x < node.size[0] - 6) return w.tooltip || "";
  }
  return "";
}

function specTooltip(def, name) {
  for (const section of ["required", "optional"]) {
    const spec = def.input && def.input[section] && def.input[section][name];
    if (spec && spec[1] && spec[1].tooltip) return spec[1].tooltip;
  }
  return "";
}

export function installTooltips(app) {
  const tip = document.getElementById("tooltip");
  let timer = null;
  const hide = () => { tip.hidden = true; clearTimeout(timer); };
  app.canvasEl.addEventListener("mouseleave", hide);
  app.canvasEl.addEventListener("mousedown", hide);
  app.canvasEl.addEventListener("mousemove", (e) => {
    hide();
    if (e.buttons) return;
    timer = setTimeout(() => {
      const text = tooltipAt(app.graph, app.canvas.convertEventToCanvasOffset(e));
      if (!text) return;
      tip.textContent = text;
      tip.style.left = `${e.clientX + 14}px`;
      tip.style.top = `${e.clientY + 14}px`;
      tip.hidden = false;
    }, DELAY_MS);
  });
}
