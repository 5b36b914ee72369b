// Widgets for node inputs declared in /object_info: INT/FLOAT (min/max/step), STRING (one line or a
// DOM textarea for multiline), BOOLEAN, COMBO (with image upload for LoadImage-style nodes), and the
// seed's control_after_generate companion. Each widget keeps `tooltip` and `inputSpec` for the UI.

import {api} from "./api.js";

export const CONTROL_VALUES = ["fixed", "increment", "decrement", "randomize"];
// JS numbers are exact up to 2**53; ComfyUI caps random seeds lower so they survive JSON round trips.
const MAX_RANDOM_SEED = 1125899906842624;

/** How a declared input is shown: "widget" (one of the types below) or "slot". */
export function widgetKind(type, opts) {
  if (opts && opts.forceInput) return null;
  if (Array.isArray(type)) return "COMBO";
  if (type === "COMBO" && opts && Array.isArray(opts.options)) return "COMBO";
  if (["INT", "FLOAT", "STRING", "BOOLEAN"].includes(type)) return type;
  return null;
}

function decimals(step) {
  const s = String(step);
  return s.includes(".") ? s.split(".")[1].length : 0;
}

/** Round a number to the widget's grid (min + k*step) and clamp it into [min, max]. */
export function snapNumber(value, opts, isInt) {
  let v = Number(value);
  if (!Number.isFinite(v)) v = Number(opts.default ?? 0);
  const step = Number(opts.round ?? (isInt ? 1 : 0));
  if (step > 0) {
    const base = Number(opts.min ?? 0);
    v = base + Math.round((v - base) / step) * step;
    v = Number(v.toFixed(Math.max(decimals(step), 0)));
  }
  if (opts.min != null && v < opts.min) v = opts.min;
  if (opts.max != null && v > opts.max) v = opts.max;
  return isInt ? Math.round(v) : v;
}

function addNumber(node, name, type, opts) {
  const isInt = type === "INT";
  const step = Number(opts.step ?? (isInt ? 1 : 0.01));
  // litegraph moves a number widget by 0.1 * options.step per click, hence the factor 10.
  const options = {min: opts.min ?? -Infinity, max: opts.max ?? Infinity, step: 10 * step,
                   precision: isInt ? 0 : Math.min(decimals(step), 6), round: isInt ? Math.max(1, step) : step};
  const w = node.addWidget("number", name, snapNumber(opts.default ?? 0, options, isInt), function (v) {
    this.value = snapNumber(v, options, isInt);
  }, options);
  return w;
}

function addText(node, name, opts) {
  return node.addWidget("text", name, String(opts.default ?? ""), function (v) { this.value = String(v); }, {});
}

function addToggle(node, name, opts) {
  const options = {on: opts.label_on || "true", off: opts.label_off || "false"};
  return node.addWidget("toggle", name, Boolean(opts.default ?? false), () => {}, options);
}

function addCombo(node, name, type, opts) {
  const values = Array.isArray(type) ? type.slice() : opts.options.slice();
  const value = opts.default !== undefined && values.includes(opts.default) ? opts.default : values[0];
  return node.addWidget("combo", name, value ?? "", () => {}, {values});
}

/** A <textarea> that floats over the canvas at the widget's place and follows pan/zoom. */
function addMultiline(node, name, opts, domHost) {
  const el = document.createElement("textarea");
  el.className = "dg-textarea";
  el.placeholder = name;
  el.spellcheck = false;
  el.value = String(opts.default ?? "");
  el.dataset.node = String(node.id);
  el.dataset.widget = name;
  domHost.appendChild(el);
  el.addEventListener("input", () => node.graph && node.graph.change());
  const widget = {
    type: "customtext", name, options: {}, dom: el, seen: false,
    get value() { return el.value; },
    set value(v) { el.value = v == null ? "" : String(v); },
    computeSize(width) { return [width, 80]; },
    draw(ctx, n, width, y, height) {
      // The context's transform maps node space to canvas pixels: reuse it for the DOM element.
      const t = ctx.getTransform();
      const ratio = ctx.canvas.width / (ctx.canvas.clientWidth || ctx.canvas.width);
      const scale = t.a / ratio;
      // A note's text box fills its node; other text boxes keep their fixed height.
      const h = this.fill ? Math.max(20, n.size[1] - y - 8) : this.computeSize(width)[1] - 6;
      el.dataset.node = String(n.id);
      Object.assign(el.style, {
        left: `${t.e / ratio + 10 * scale}px`, top: `${t.f / ratio + (y + 2) * scale}px`,
        width: `${width - 20}px`, height: `${h}px`, transform: `scale(${scale})`,
      });
      el.hidden = Boolean(this.hiddenAsInput);
      this.seen = true;
    },
    onRemove() { el.remove(); },
  };
  node.addCustomWidget(widget);
  const prevRemoved = node.onRemoved;
  node.onRemoved = function () {
    el.remove();
    if (prevRemoved) prevRemoved.apply(this, arguments);
  };
  return widget;
}

/** The control_after_generate companion of a number or combo widget, applied after each queue. */
export function addControl(node, target) {
  const w = node.addWidget("combo", "control_after_generate", "randomize", () => {}, {values: CONTROL_VALUES});
  w.isControl = true;
  w.linkedTo = target;
  w.tooltip = "What happens to the value after each queued run";
  target.control = w;
  return w;
}

/** The combo's values that pass its control_filter_list (a substring, or /regex/), if it has one. */
function filteredValues(control, values) {
  const filter = control.filter ? String(control.filter.value || "").trim() : "";
  if (!filter) return values;
  let test = (v) => String(v).toLowerCase().includes(filter.toLowerCase());
  const m = /^\/(.*)\/(\w*)$/.exec(filter);
  if (m) {
    try { const re = new RegExp(m[1], m[2]); test = (v) => re.test(String(v)); } catch { /* a bad regex filters nothing */ }
  }
  const kept = values.filter(test);
  return kept.length ? kept : values;
}

/** The next value of a combo under its control: clamped at the ends, as ComfyUI does. */
function nextComboValue(control, target) {
  const values = filteredValues(control, target.options.values || []);
  if (!values.length) return target.value;
  const i = values.indexOf(target.value);
  if (control.value === "increment") return values[Math.min(i + 1, values.length - 1)];
  if (control.value === "decrement") return values[Math.max(i < 0 ? 0 : i - 1, 0)];
  if (control.value === "randomize") return values[Math.floor(Math.random() * values.length)];
  return target.value;
}

/** Apply control_after_generate to every seed-like widget of the graph (after a prompt was queued). */
export function applyControls(graph) {
  for (const node of graph._nodes) {
    for (const w of node.widgets || []) {
      if (!w.isControl || !w.linkedTo || w.linkedTo.hiddenAsInput) continue;
      const t = w.linkedTo;
      const o = t.options;
      if (t.type === "combo") {
        t.value = nextComboValue(w, t);
      } else {
        const lo = Number.isFinite(o.min) ? o.min : 0;
        const hi = Math.min(Number.isFinite(o.max) ? o.max : MAX_RANDOM_SEED, MAX_RANDOM_SEED);
        const step = o.round || 1;
        if (w.value === "increment") t.value = Math.min(t.value + step, hi);
        else if (w.value === "decrement") t.value = Math.max(t.value - step, lo);
        else if (w.value === "randomize") t.value = lo + Math.floor(Math.random() * ((hi - lo) / step + 1)) * step;
      }
      if (t.callback) t.callback.call(t, t.value);
    }
  }
}

function addUpload(node, comboWidget, app) {
  // Value "image" as ComfyUI's upload widget, so positional widgets_values of its files line up.
  const w = node.addWidget("button", "choose file to upload", "image", () => {
    const input = document.createElement("input");
    input.type = "file";
    input.accept = "image/png,image/jpeg,image/webp";
    input.onchange = async () => {
      if (!input.files.length) return;
      const form = new FormData();
      form.append("image", input.files[0]);
      form.append("type", "input");
      const res = await api.fetchApi("/upload/image", {method: "POST", body: form});
      if (!res.ok) { app.toast(`Upload failed: HTTP ${res.status}`, "error"); return; }
      const info = await res.json();
      const name = info.subfolder ? `${info.subfolder}/${info.name}` : info.name;
      if (!comboWidget.options.values.includes(name)) comboWidget.options.values.push(name);
      comboWidget.value = name;
      app.canvas.setDirty(true, true);
    };
    input.click();
  });
  w.options.serialize = false;
  return w;
}

/** Add the widget(s) for one declared input; returns the main widget. */
export function addInputWidget(node, name, kind, type, opts, app) {
  let w;
  if (kind === "INT" || kind === "FLOAT") w = addNumber(node, name, kind, opts);
  else if (kind === "STRING") w = opts.multiline ? addMultiline(node, name, opts, app.domHost) : addText(node, name, opts);
  else if (kind === "BOOLEAN") w = addToggle(node, name, opts);
  else w = addCombo(node, name, type, opts);
  w.tooltip = opts.tooltip || "";
  w.inputType = kind === "COMBO" ? "COMBO" : kind;
  w.inputSpec = [type, opts];
  const wantsControl = opts.control_after_generate || (kind === "INT" && ["seed", "noise_seed"].includes(name));
  if (kind === "INT" && wantsControl) addControl(node, w);
  if (kind === "COMBO" && opts.image_upload) addUpload(node, w, app);
  return w;
}
