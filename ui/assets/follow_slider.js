// Moves the marker of Streamlit's own plotly charts (and swaps precomputed frames) in the browser, the moment a
// slider moves, without waiting for the server: see ui/follow.py. Registered once per page; every instance
// says which slider it follows and which charts / frame strips it drives.
const REG = (window.__courseFollow = window.__courseFollow || { links: new Map(), bound: false });

function sliderInput(key) {
  return document.querySelector(`.st-key-${key} input[type=range]`);
}

function interp(xs, ys, x) {
  // Linear interpolation of the curve (xs ascending) at x; NaN outside it or across a gap.
  const n = xs.length;
  if (!n || x < xs[0] || x > xs[n - 1]) return NaN;
  let lo = 0, hi = n - 1;
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (xs[mid] <= x) lo = mid; else hi = mid; }
  if (xs[hi] === xs[lo]) return ys[lo];
  const w = (x - xs[lo]) / (xs[hi] - xs[lo]);
  return ys[lo] + w * (ys[hi] - ys[lo]);
}

function circlePath(cx, cy, r) {
  return `M${cx + r},${cy}A${r},${r} 0 1,1 ${cx},${cy - r}A${r},${r} 0 0,1 ${cx + r},${cy}Z`;
}

function setShape(gd, i, values) {
  // Keep plotly's own copy right, so that a later redraw (a resize) draws the marker where it is now.
  for (const layout of [gd.layout, gd._fullLayout]) if (layout.shapes && layout.shapes[i]) Object.assign(layout.shapes[i], values);
}

function moveChart(key, x, text) {
  // Moves the marker's SVG paths directly: plotly.relayout would redraw the axes, legend and titles too
  // (about 600 DOM changes and 20 ms per chart, measured); this changes a few attributes.
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis || !gd.layout || !gd.layout.meta || !gd.layout.meta.follow) return false;
  const m = gd.layout.meta.follow, fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
  const root = gd.querySelector(".main-svg") ? gd : null;
  if (!root || typeof xa.d2p !== "function") return false;
  const px = xa._offset + xa.d2p(x);
  if (!Number.isFinite(px)) return false;
  const shapePath = (i) => gd.querySelector(`.shapelayer .shape-group[data-index="${i}"] path, .shapelayer path[data-index="${i}"]`);
  if (m.line !== undefined && m.line !== null) {
    const path = shapePath(m.line);
    if (!path) return false;
    path.setAttribute("d", `M${px},${ya._offset + ya._length}L${px},${ya._offset}`);
    setShape(gd, m.line, { x0: x, x1: x });
  }
  for (const [shape, trace] of m.dots || []) {
    const tr = gd._fullData[trace];  // decoded arrays (the figure sends them base64-encoded)
    let y = tr ? interp(tr.x, tr.y, x) : NaN;
    if (m.log_y && !(y > 0)) y = NaN;
    const path = shapePath(shape);
    const py = Number.isFinite(y) ? ya._offset + ya.d2p(y) : NaN;
    if (path) {
      if (Number.isFinite(py)) { path.setAttribute("d", circlePath(px, py, 5)); path.style.display = ""; }
      else path.style.display = "none";
    }
    setShape(gd, shape, Number.isFinite(py) ? { xanchor: x, yanchor: y, visible: true } : { xanchor: x, visible: false });
  }
  if (m.label !== undefined && m.label !== null) {
    const g = gd.querySelector(`.infolayer .annotation[data-index="${m.label}"]`);
    const note = gd.layout.annotations && gd.layout.annotations[m.label];
    if (g && note) {
      // Plotly drew this label at note.x: shift its group from there (a redraw makes a new group at note.x).
      if (g.__courseFrom === undefined) g.__courseFrom = xa._offset + xa.d2p(note.x);
      const el = g.querySelector("text.annotation-text");
      if (el && text !== null && el.textContent !== text) el.textContent = text;
      // Near the right edge the label goes to the left of the line, so that it is never cut off.
      const width = el && px > xa._offset + 0.75 * xa._length ? el.getBBox().width + 6 : 0;
      g.setAttribute("transform", `translate(${px - g.__courseFrom - width},0)`);
      for (const layout of [gd.layout, gd._fullLayout]) {
        const a = layout.annotations && layout.annotations[m.label];
        if (a) { a.x = x; if (text !== null) a.text = text; }
      }
    }
  }
  return true;
}

function showFrame(key, index) {
  const img = document.querySelector(`.st-key-${key} img[data-course-frames]`);
  if (!img || !img.__courseFrames) return;
  const frames = img.__courseFrames;
  const i = Math.max(0, Math.min(frames.length - 1, index));
  if (img.__courseAt !== i) { img.__courseAt = i; img.src = frames[i]; }
}

function apply(link, raw) {
  // raw: the slider's position (its value, or for a select_slider the index of its option).
  const i = Math.round((raw - link.min) / link.step);
  const x = link.xs ? link.xs[Math.max(0, Math.min(link.xs.length - 1, i))] : raw;
  const shown = link.texts ? link.texts[Math.max(0, Math.min(link.texts.length - 1, i))] : String(raw);
  const text = link.label === null ? null : link.label.replace("{v}", shown);
  let pending = false;
  for (const chart of link.charts) pending = !moveChart(chart, x, text) || pending;
  for (const strip of link.frames) showFrame(strip, link.frame_of ? link.frame_of[i] : i);
  return pending;
}

function onSlider(el) {
  const box = el.closest('[class*="st-key-"]');
  if (!box) return;
  for (const link of REG.links.values()) {
    if (box.classList.contains(`st-key-${link.slider}`)) apply(link, Number(el.value));
  }
}

function bindOnce() {
  if (REG.bound) return;
  REG.bound = true;
  // A key press on a slider changes its (hidden, native) range input at once: follow it before the server answers.
  document.addEventListener("input", (e) => { if (e.target && e.target.type === "range") onSlider(e.target); }, true);
  new MutationObserver((ms) => {
    for (const m of ms) if (m.target.type === "range") onSlider(m.target);
  }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["value"] });
}

function later(fn, tries) {
  // Try again on the next frames, then every quarter second (plotly.js itself may take seconds to load).
  if (tries > 80) requestAnimationFrame(fn); else setTimeout(fn, 250);
}

function settle(link, tries) {
  // Charts mount after this element on a first run: try again on the next frames until each is drawn.
  const el = sliderInput(link.slider);
  const raw = el ? Number(el.value) : link.value;
  if (apply(link, raw) && tries > 0) later(() => settle(link, tries - 1), tries);
}

const TYPED = { f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array,
  i4: Int32Array, u4: Uint32Array };

function decoded(a) {
  // An array of a figure as plotly.py sends it: a list, or {dtype, bdata} (a base64 typed array); null otherwise.
  if (Array.isArray(a)) return a;
  if (!a || typeof a.bdata !== "string" || !TYPED[a.dtype] || a.shape) return null;
  const raw = atob(a.bdata), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return new TYPED[a.dtype](bytes.buffer);
}

function outlineKey(figure) {
  // What must not change for a patch: the layout but its title, and every trace but its points (as sent: taken
  // before plotly sees the figure).
  if (figure.__courseKey === undefined) {
    const layout = { ...figure.layout, title: { ...(figure.layout.title || {}), text: null } };
    figure.__courseKey = JSON.stringify([layout, figure.data.map(({ x, y, ...rest }) => rest)]);
  }
  return figure.__courseKey;
}

function fixedRange(axis) {
  return !!axis && Array.isArray(axis.range) && axis.range.length === 2 && axis.autorange !== true;
}

function patchOutlines(gd, figure) {
  // A chart on fixed axes whose traces are all filled outlines (mode "none", fill "toself") or plain lines (mode
  // "lines"), without gaps (one SVG path each, see ui/playground/lab.py), and whose new figure differs from the one
  // shown in the points and the title only: set each path's d from the new points (one attribute per path) instead
  // of Plotly.react, which would redraw the axes and the legend too (about 500 DOM changes and 20 ms per chart).
  // False (nothing changed) otherwise.
  const shown = gd.__courseApplied, fl = gd._fullLayout, lay = figure.layout || {};
  if (!shown || !fl || !fl.xaxis || !fl.yaxis || figure.data.length !== shown.data.length) return false;
  if (!fixedRange(lay.xaxis) || !fixedRange(lay.yaxis) || outlineKey(figure) !== outlineKey(shown)) return false;
  const groups = gd.querySelectorAll(".scatterlayer .trace");
  if (groups.length !== figure.data.length) return false;
  const xa = fl.xaxis, ya = fl.yaxis, paths = [];
  for (let i = 0; i < figure.data.length; i++) {
    const tr = figure.data[i], filled = tr.fill === "toself", lines = tr.mode === "lines";
    if (tr.type !== "scatter" || !(lines || (tr.mode === "none" && filled)) || (tr.fill && tr.fill !== "none" && !filled)) return false;
    if ((tr.line && tr.line.shape && tr.line.shape !== "linear") || (tr.xaxis && tr.xaxis !== "x") || (tr.yaxis && tr.yaxis !== "y")) return false;
    const fills = groups[i].querySelectorAll("path.js-fill"), strokes = groups[i].querySelectorAll("path.js-line");
    const x = decoded(tr.x), y = decoded(tr.y);
    if (fills.length !== (filled ? 1 : 0) || (lines && strokes.length !== 1)) return false;
    if (!x || !y || x.length !== y.length || x.length < 2) return false;
    const parts = new Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const px = xa.c2p(x[k]), py = ya.c2p(y[k]);  // the trace layer is already shifted to the plot's corner
      if (!Number.isFinite(px) || !Number.isFinite(py)) return false;  // a gap: plotly draws pieces, not one path
      parts[k] = `${px.toFixed(2)},${py.toFixed(2)}`;
    }
    const d = "M" + parts.join("L");
    if (filled) paths.push([fills[0], d + "Z"]);
    if (lines) paths.push([strokes[0], d]);
  }
  for (const [path, d] of paths) path.setAttribute("d", d);
  const title = figure.layout.title && figure.layout.title.text;
  let el = gd.querySelector(".gtitle");
  while (el && el.firstElementChild) el = el.firstElementChild;  // Streamlit's bold title is a tspan in it
  if (el && typeof title === "string" && !/[<&]/.test(title) && el.textContent !== title) el.textContent = title;
  gd.__courseApplied = figure;
  return true;
}

function themed(gd, layout) {
  // Streamlit draws a chart in its theme (its template, a bold title): keep it in a figure applied here, and the
  // chart's width.
  const out = { ...layout, width: gd._fullLayout.width, height: layout.height || gd._fullLayout.height };
  if (gd.layout && gd.layout.template) out.template = gd.layout.template;
  const text = layout.title && layout.title.text, shown = gd.layout && gd.layout.title && gd.layout.title.text;
  if (typeof text === "string" && text && !text.startsWith("<b>") && String(shown || "").startsWith("<b>")) {
    out.title = { ...layout.title, text: `<b>${text}</b>` };
  }
  return out;
}

function redraw(key, figure, tries) {
  // A chart whose data change with the slider: Streamlit keeps one figure (the same at every step, so it never
  // rebuilds it) and this applies the server's new figure with Plotly.react, which redraws what changed only.
  REG.wanted = REG.wanted || new Map();
  if (REG.wanted.has(key) && REG.wanted.get(key) !== figure && tries < 200) return;  // a newer figure came
  REG.wanted.set(key, figure);
  outlineKey(figure);  // now: Plotly.react adds to the traces it is given (their uid)
  const gd = document.querySelector(`.st-key-${key} .js-plotly-plot`);
  if (!gd || !gd._fullLayout || !window.Plotly) {
    if (tries > 0) later(() => redraw(key, figure, tries - 1), tries);
    return;
  }
  const meta = figure.layout && figure.layout.meta;
  if (meta && meta.keep_images) figure.layout.images = gd.layout.images;  // a picture sent once, with the chart
  gd.__courseFigure = figure;
  if (!gd.__courseWatch) {  // Streamlit redraws its own figure on a resize: put this one back
    gd.__courseWatch = true;
    gd.on("plotly_afterplot", () => {
      const f = gd.__courseFigure;
      if (f && gd.data !== f.data && !gd.__courseBusy) { gd.__courseBusy = true; gd.__courseApplied = f; window.Plotly.react(gd, f.data, themed(gd, f.layout)).finally(() => { gd.__courseBusy = false; }); }
    });
  }
  if (!gd.__courseBusy && patchOutlines(gd, figure)) return;
  gd.__courseBusy = true;
  gd.__courseApplied = figure;
  window.Plotly.react(gd, figure.data, themed(gd, figure.layout))
    .finally(() => { gd.__courseBusy = false; });
}

export default function (component) {
  const { data, parentElement } = component;
  bindOnce();
  // Nothing to show: take no room in the page (an element, even empty, adds the gap between elements).
  const box = parentElement && parentElement.closest && parentElement.closest('[data-testid="stElementContainer"]');
  if (box) box.style.display = "none";
  for (const [key, figure] of Object.entries(data.figures || {})) redraw(key, figure, 200);
  const link = { ...data, charts: data.charts || [], frames: data.frames || [] };
  REG.links.set(data.id, link);
  for (const strip of link.frames) {
    const img = document.querySelector(`.st-key-${strip} img`);
    if (img && data.frame_urls) { img.__courseFrames = data.frame_urls; img.setAttribute("data-course-frames", ""); }
  }
  settle(link, 200);
  return () => { if (REG.links.get(data.id) === link) REG.links.delete(data.id); };
}
