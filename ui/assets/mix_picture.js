// Draws pictures that are a fixed mix of a few arrays, at the slider's position, the moment it moves: see
// ui/mix.py for the payload (b"MIX1", a JSON header, int16 bases, float64 weights per picture).
const REG = (window.__courseMix = window.__courseMix || { shown: new Set(), bound: false, decoded: new WeakMap() });

function decode(bytes) {
  // protobuf hands the payload over as a view into a larger buffer: copy it so that the typed arrays align.
  if (REG.decoded.has(bytes)) return REG.decoded.get(bytes);
  const raw = bytes instanceof Uint8Array ? bytes.slice() : new Uint8Array(bytes).slice();
  const magic = String.fromCharCode(...raw.subarray(0, 4));
  if (magic !== "MIX1") throw new Error("not a mixed-picture payload");
  const n = new DataView(raw.buffer).getUint32(4, true);
  const head = JSON.parse(new TextDecoder().decode(raw.subarray(8, 8 + n)));
  let at = 8 + n + ((8 - ((8 + n) % 8)) % 8);
  const size = head.h * head.w * head.c, bases = [];
  for (let k = 0; k < head.scales.length; k++, at += 2 * size) bases.push(new Int16Array(raw.buffer, at, size));
  at += (8 - (at % 8)) % 8;
  const weights = head.captions.map((_, i) => new Float64Array(raw.buffer, at + i * 8 * head.positions * bases.length,
    head.positions * bases.length));
  const out = { ...head, bases, weights };
  REG.decoded.set(bytes, out);
  return out;
}

function draw(view, position) {
  // Picture i at slider position p: clip(rint((sum_k w[p, k] scale_k q_k + 1) * 127.5), 0, 255), as the server's
  // tensor_to_image would make it (ui/mix.py).
  const m = view.mix, p = Math.max(0, Math.min(m.positions - 1, position)), K = m.bases.length;
  if (view.at === p) return;
  view.at = p;
  const shown = m.texts ? m.texts[p] : String(m.min + p * m.step);
  m.captions.forEach((caption, i) => {
    const w = Array.from({ length: K }, (_, k) => m.weights[i][p * K + k] * m.scales[k]);
    const pic = view.pictures[i], data = pic.image.data, size = m.h * m.w;
    for (let j = 0; j < size; j++) {
      for (let ch = 0; ch < 4; ch++) {
        if (ch === 3) { data[4 * j + 3] = 255; continue; }
        const src = m.c === 1 ? j : j * m.c + ch;
        let x = 0;
        for (let k = 0; k < K; k++) x += w[k] * m.bases[k][src];
        const v = Math.round((x + 1) * 127.5);  // rint: ties go up here, to even in numpy (one grey level at most)
        data[4 * j + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
    pic.ctx.putImageData(pic.image, 0, 0);
    const template = Array.isArray(caption) ? caption[p] : caption;
    const text = template.replaceAll("{v}", shown).replaceAll("{v_sub}", subscript(shown))
      .replace(/\{w(\d+)\}/g, (_, k) => (m.weights[i][p * K + Number(k)]).toFixed(4));
    if (pic.caption.textContent !== text) pic.caption.textContent = text;
    pic.canvas.setAttribute("aria-label", text);
  });
}

function subscript(text) {
  return text.replace(/[0-9]/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[Number(d)]);
}

function sliderOf(key) {
  return document.querySelector(`.st-key-${key} input[type=range]`);
}

function follow(view) {
  const el = sliderOf(view.mix.slider);
  if (el) draw(view, Math.round((Number(el.value) - view.mix.min) / view.mix.step));
  return !!el;
}

function bindOnce() {
  if (REG.bound) return;
  REG.bound = true;
  const moved = (el) => {
    const box = el.closest('[class*="st-key-"]');
    if (!box) return;
    for (const view of REG.shown) if (box.classList.contains(`st-key-${view.mix.slider}`)) follow(view);
  };
  document.addEventListener("input", (e) => { if (e.target && e.target.type === "range") moved(e.target); }, true);
  new MutationObserver((ms) => { for (const m of ms) if (m.target.type === "range") moved(m.target); })
    .observe(document.body, { subtree: true, attributes: true, attributeFilter: ["value"] });
}

function build(root, mix) {
  // The pictures side by side, each in an equal share of the width as st.columns would give it (one under the
  // other when the column is narrower than two of them), at `factor` times its pixels, never wider than its
  // share, with crisp pixels, and its caption under it as st.image has it.
  root.replaceChildren();
  root.className = "course-mix";
  root.style.cssText = "display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start";
  const side = mix.w * mix.factor;
  const pictures = mix.captions.map(() => {
    const figure = document.createElement("figure");
    figure.style.cssText = `margin:0;flex:1 1 ${Math.min(side, 280)}px;min-width:0`;
    const box = document.createElement("div");
    box.style.cssText = `max-width:${side}px`;
    const canvas = document.createElement("canvas");
    canvas.width = mix.w;
    canvas.height = mix.h;
    canvas.setAttribute("role", "img");
    canvas.style.cssText = "display:block;width:100%;height:auto;image-rendering:pixelated";
    const caption = document.createElement("figcaption");
    caption.style.cssText = "font-size:0.875rem;opacity:0.6;text-align:center;margin-top:0.375rem;overflow-wrap:anywhere;white-space:pre-line";
    box.append(canvas, caption);
    figure.append(box);
    root.append(figure);
    const ctx = canvas.getContext("2d");
    return { canvas, caption, ctx, image: ctx.createImageData(mix.w, mix.h) };
  });
  return { mix, pictures, at: null };
}

export default function (component) {
  const { data, parentElement } = component;
  bindOnce();
  let root = parentElement.querySelector(":scope > .course-mix");
  if (!root) { root = document.createElement("div"); parentElement.append(root); }
  const mix = decode(data);
  let view = root.__courseView;
  if (!view || view.mix !== mix) { view = build(root, mix); root.__courseView = view; }
  REG.shown.add(view);
  if (!follow(view)) {  // the slider mounts after this element: draw once it is there
    let tries = 0;
    const again = () => { if (!follow(view) && tries++ < 200) setTimeout(again, 25); };
    again();
  }
  return () => REG.shown.delete(view);
}
