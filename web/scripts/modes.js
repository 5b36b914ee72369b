// Muted (mode 2, "Never") and bypassed (mode 4) nodes, as in ComfyUI: Ctrl+M and Ctrl+B toggle
// them on the selected nodes, "Bypass" joins litegraph's Mode menu, and both are drawn faded (a
// bypassed node in purple). convert.js leaves them out of the API prompt or passes links through.

/* global LiteGraph, LGraphNode */

export const MODE_ALWAYS = 0;
export const MODE_NEVER = 2;
export const MODE_BYPASS = 4;
const BYPASS_COLORS = {color: "#4a1f4a", bgcolor: "#7a2e7a"};

/** Set `mode` on every node, or back to "Always" when all of them already have it. */
export function toggleMode(nodes, mode) {
  const target = nodes.every((n) => n.mode === mode) ? MODE_ALWAYS : mode;
  for (const node of nodes) node.mode = target;
  return target;
}

/** Draw `node` with the canvas faded for its mode, restoring the canvas and node afterwards. */
export function drawWithMode(canvas, node, draw) {
  if (node.mode !== MODE_NEVER && node.mode !== MODE_BYPASS) return draw();
  const alpha = canvas.editor_alpha;
  const {color, bgcolor} = node;
  canvas.editor_alpha = alpha * (node.mode === MODE_NEVER ? 0.4 : 0.75);
  if (node.mode === MODE_BYPASS) Object.assign(node, BYPASS_COLORS);
  try {
    return draw();
  } finally {
    canvas.editor_alpha = alpha;
    node.color = color;
    node.bgcolor = bgcolor;
  }
}

export function installModes(app) {
  if (LiteGraph.NODE_MODES.length <= MODE_BYPASS) LiteGraph.NODE_MODES[MODE_BYPASS] = "Bypass";
  // litegraph's changeMode refuses modes it does not know, so the menu could not pick "Bypass".
  const changeMode = LGraphNode.prototype.changeMode;
  LGraphNode.prototype.changeMode = function (mode) {
    if (mode !== MODE_BYPASS) return changeMode.call(this, mode);
    this.mode = mode;
    return true;
  };
  document.addEventListener("keydown", (e) => {
    if (!e.ctrlKey || e.altKey || e.target.closest("textarea, input, select")) return;
    const key = e.key.toLowerCase();
    if (key !== "m" && key !== "b") return;
    const nodes = Object.values(app.canvas.selected_nodes || {});
    if (!nodes.length) return;
    e.preventDefault();
    toggleMode(nodes, key === "m" ? MODE_NEVER : MODE_BYPASS);
    app.graph.change();
    app.canvas.setDirty(true, true);
  });
}
