// lkdetect editor page: draws the server's view, sends edit operations (see lkdetect/editor/server.py).
// No library: plain DOM and fetch. Keypoints are in pixels of the R x R image, pixel centres at integers.
"use strict";

const $ = (id) => document.getElementById(id);
const DISPLAY = 384; // on-screen side of the edited image, in CSS pixels

let view = null; // the last view the server sent
let scale = 6; // CSS pixels per image pixel
let selected = new Set();
let drag = null; // {parts, start, x0, y0, op}
let inflight = 0;
let previewBusy = false;
let previewAgain = false;
let queue = Promise.resolve(); // committed requests run one after another
const timings = []; // round trips of drag previews in ms, for benchmarks/editor_latency.py --browser

// ------------------------------------------------------------------------------------------------ helpers
function palette(k) {
  // the same colours as gan.viz.palette: HSV (i / k, 0.9, 1.0)
  const out = [];
  for (let i = 0; i < k; i++) {
    const h = i / Math.max(k, 1), s = 0.9, v = 1.0;
    const j = Math.floor(h * 6), f = h * 6 - j, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][j % 6];
    out.push(`rgb(${Math.floor(255 * r)},${Math.floor(255 * g)},${Math.floor(255 * b)})`);
  }
  return out;
}

function setBusy(delta) {
  inflight += delta;
  document.body.dataset.busy = inflight > 0 || drag ? "1" : "0";
}

function setError(text) {
  $("error").textContent = text ? `error: ${text}` : "";
}

async function call(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const t0 = performance.now();
  const res = await fetch(path, opts);
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return { data, ms: performance.now() - t0 };
}

function detectFlag() {
  return $("show-det").checked;
}

// A committed request: queued, its view shown; on error the message is shown and the page re-synchronised.
function run(method, path, body) {
  setBusy(+1);
  const p = queue.then(async () => {
    try {
      const { data, ms } = await call(method, path, body);
      setError("");
      show(data, ms);
    } catch (e) {
      setError(e.message);
      try {
        const { data, ms } = await call("GET", `/api/state?detect=${detectFlag() ? 1 : 0}`);
        show(data, ms, true);
      } catch (e2) {
        setError(`${e.message}; ${e2.message}`);
      }
    } finally {
      setBusy(-1);
    }
  });
  queue = p;
  return p;
}

function op(body) {
  return run("POST", "/api/op", { op: body, detect: detectFlag() });
}

function parts() {
  return selected.size ? [...selected].sort((a, b) => a - b) : null;
}

function withParts(body) {
  const p = parts();
  return p ? { ...body, parts: p } : body;
}

function fmt(c) {
  if (!c) return "none";
  return `mean |Δ| ${c.mean_abs.toFixed(2)} / 255, max ${c.max_abs.toFixed(0)}, ` +
    `${(100 * c.changed_share).toFixed(1)} % of pixels changed by more than 8 / 255`;
}

// --------------------------------------------------------------------------------------------------- view
function place(el, x, y) {
  el.style.left = `${(x + 0.5) * scale}px`;
  el.style.top = `${(y + 0.5) * scale}px`;
}

function show(v, ms, keepError) {
  view = v;
  if (!keepError) setError("");
  scale = Math.max(1, Math.floor(DISPLAY / v.size));
  for (const id of ["before-stage", "stage", "diff-stage"]) {
    $(id).style.width = $(id).style.height = `${v.size * scale}px`;
  }
  const small = Math.max(1, Math.floor(scale / 2));
  $("b-stage").style.width = $("b-stage").style.height = `${v.size * small}px`;
  $("after").src = v.image;
  $("before").src = v.before;
  $("diff").src = v.diff;
  $("other").src = v.other;
  const n = v.keypoints.length, pal = palette(v.n_original);
  for (const p of [...selected]) if (p >= n) selected.delete(p);
  if (!drag) drawHandles(v, pal);
  drawDetections(v, pal);
  const bh = $("b-handles");
  bh.replaceChildren();
  v.other_keypoints.forEach(([x, y], i) => {
    const d = document.createElement("div");
    d.className = "kp small";
    d.style.background = pal[i];
    d.style.left = `${(x + 0.5) * small}px`;
    d.style.top = `${(y + 0.5) * small}px`;
    bh.append(d);
  });
  $("b-info").textContent = `(seed ${v.other_sample.seed}, index ${v.other_sample.index})`;
  const e = v.edit;
  $("info").textContent = `${e.gan.file}, ${v.size} px, K = ${v.n_original}; sample seed ${e.sample.seed}, ` +
    `index ${e.sample.index}; ${v.detector ? "detector loaded" : "no detector"}`;
  $("show-det").disabled = !v.detector;
  $("change-original").textContent = `Since the unedited sample: ${fmt(v.change.original)}.`;
  $("change-last").textContent = v.change.last_op
    ? `${v.preview ? "This drag" : `Last edit (${v.change.last_op})`}: ${fmt(v.change.last)}.`
    : "No edit yet.";
  $("latency").textContent = ms === undefined ? "" :
    `Round trip ${ms.toFixed(0)} ms (server ${v.server_ms.toFixed(0)} ms).`;
  if (v.preview) return;
  drawParts(v, pal);
  $("undo").disabled = v.history.position === 0;
  $("redo").disabled = v.history.position >= v.history.length - 1;
  $("edit-json").value = JSON.stringify(e, null, 1);
  $("ops").replaceChildren(...e.ops.map((o) => {
    const li = document.createElement("li");
    li.textContent = JSON.stringify(o);
    return li;
  }));
  const from = $("gif-from"), old = from.value || "original";
  from.replaceChildren(new Option("the unedited sample", "original"),
    ...Array.from({ length: v.history.length }, (_, i) => new Option(`history state ${i}`, String(i))));
  from.value = [...from.options].some((o) => o.value === old) ? old : "original";
  $("seed").value = e.sample.seed;
  $("index").value = e.sample.index;
  document.body.dataset.version = String(Number(document.body.dataset.version) + 1);
}

function drawHandles(v, pal) {
  const box = $("handles");
  box.replaceChildren();
  v.keypoints.forEach(([x, y], i) => {
    const d = document.createElement("div");
    d.className = "kp";
    if (v.visible[i] < 0.5) d.classList.add("removed");
    if (i >= v.n_original) d.classList.add("added");
    if (selected.has(i)) d.classList.add("selected");
    d.style.background = pal[v.sources[i]];
    d.style.borderColor = v.visible[i] < 0.5 ? pal[v.sources[i]] : "#000";
    d.dataset.part = String(i);
    d.title = `part ${i}` + (i >= v.n_original ? ` (copy of part ${v.sources[i]})` : "");
    place(d, x, y);
    d.addEventListener("pointerdown", startDrag);
    box.append(d);
  });
}

function drawDetections(v, pal) {
  const box = $("dets");
  box.replaceChildren();
  if (!detectFlag() || !v.detections) return;
  v.detections.forEach((p, i) => {
    if (p === null) return; // a keypoint of the GAN that this detector does not output
    const [x, y] = p;
    const d = document.createElement("div");
    d.className = "det";
    d.style.setProperty("--c", pal[i % pal.length]);
    d.title = `detected keypoint ${i}`;
    place(d, x, y);
    box.append(d);
  });
}

function drawParts(v, pal) {
  const box = $("parts");
  box.replaceChildren(...v.keypoints.map((_, i) => {
    const label = document.createElement("label");
    const cb = document.createElement("input");
    cb.type = "checkbox";
    cb.checked = selected.has(i);
    cb.dataset.part = String(i);
    cb.addEventListener("change", () => {
      if (cb.checked) selected.add(i); else selected.delete(i);
      drawHandles(view, palette(view.n_original));
    });
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = pal[v.sources[i]];
    label.append(cb, sw, ` ${i}${v.visible[i] < 0.5 ? " (removed)" : ""}${i >= v.n_original ? " (added)" : ""}`);
    return label;
  }));
}

function redrawSelection() {
  drawHandles(view, palette(view.n_original));
  drawParts(view, palette(view.n_original));
}

// --------------------------------------------------------------------------------------------------- drag
function startDrag(ev) {
  ev.preventDefault();
  const part = Number(ev.currentTarget.dataset.part);
  if (ev.shiftKey) {
    if (selected.has(part)) selected.delete(part); else selected.add(part);
    redrawSelection();
    return;
  }
  if (!selected.has(part)) {
    selected = new Set([part]);
    redrawSelection();
  }
  const ps = [...selected].sort((a, b) => a - b);
  drag = { parts: ps, start: ps.map((p) => view.keypoints[p]), x0: ev.clientX, y0: ev.clientY, op: null };
  setBusy(0);
  const el = $("handles").querySelector(`[data-part="${part}"]`);
  el.classList.add("dragging");
  el.setPointerCapture(ev.pointerId);
  el.addEventListener("pointermove", moveDrag);
  el.addEventListener("pointerup", endDrag, { once: true });
  el.addEventListener("pointercancel", endDrag, { once: true });
}

function dragOp(dx, dy) {
  const r = (x) => Math.round(x * 100) / 100;
  if (drag.parts.length === 1) {
    const [x, y] = drag.start[0];
    return { op: "move", parts: drag.parts, xy: [[r(x + dx), r(y + dy)]] };
  }
  return { op: "translate", parts: drag.parts, offset: [r(dx), r(dy)] };
}

function moveDrag(ev) {
  if (!drag) return;
  const dx = (ev.clientX - drag.x0) / scale, dy = (ev.clientY - drag.y0) / scale;
  drag.op = dragOp(dx, dy);
  drag.parts.forEach((p, i) => {
    const el = $("handles").querySelector(`[data-part="${p}"]`);
    if (el) place(el, drag.start[i][0] + dx, drag.start[i][1] + dy);
  });
  preview();
}

async function preview() {
  if (previewBusy) {
    previewAgain = true;
    return;
  }
  previewBusy = true;
  setBusy(+1);
  try {
    while (drag && drag.op) {
      previewAgain = false;
      const body = { op: drag.op, preview: true, detect: detectFlag() };
      try {
        const { data, ms } = await call("POST", "/api/op", body);
        if (timings.length < 10000) timings.push(ms);
        if (drag) show(data, ms);
      } catch (e) {
        setError(e.message);
      }
      if (!previewAgain) break;
    }
  } finally {
    previewBusy = false;
    setBusy(-1);
  }
}

function endDrag(ev) {
  const el = ev.currentTarget;
  el.removeEventListener("pointermove", moveDrag);
  const done = drag;
  drag = null;
  if (done && done.op) op(done.op);
  else if (view) drawHandles(view, palette(view.n_original));
  setBusy(0);
}

// -------------------------------------------------------------------------------------------------- buttons
function num(id) {
  return Number($(id).value);
}

function bind(id, fn) {
  $(id).addEventListener("click", fn);
}

bind("sel-all", () => { selected = new Set(view.keypoints.map((_, i) => i)); redrawSelection(); });
bind("sel-none", () => { selected = new Set(); redrawSelection(); });
bind("translate", () => op(withParts({ op: "translate", offset: [num("dx"), num("dy")] })));
bind("scale", () => op(withParts({ op: "scale", factor: num("factor") })));
bind("rotate", () => op(withParts({ op: "rotate", degrees: num("degrees") })));
bind("swap", () => op(withParts({ op: "swap_embeddings" })));
bind("interp", () => op(withParts({ op: "interpolate_embeddings", t: num("t-emb") })));
bind("swap-bg", () => op({ op: "swap_background" }));
bind("interp-bg", () => op({ op: "interpolate_background", t: num("t-bg") }));
bind("remove", () => {
  if (!selected.size) { setError("select the parts to remove first"); return; }
  op({ op: "remove", parts: parts() });
});
bind("restore", () => op(withParts({ op: "restore" })));
bind("add", () => {
  if (selected.size !== 1) { setError("select exactly one part to copy"); return; }
  const src = [...selected][0], [x, y] = view.keypoints[src];
  const nx = Math.min(x + 6, 1.5 * view.size);
  run("POST", "/api/op", { op: { op: "add", source: src, xy: [nx, y] }, detect: detectFlag() })
    .then(() => { selected = new Set([view.keypoints.length - 1]); redrawSelection(); });
});
bind("undo", () => run("POST", "/api/undo", { detect: detectFlag() }));
bind("redo", () => run("POST", "/api/redo", { detect: detectFlag() }));
bind("reset", () => run("POST", "/api/reset", { detect: detectFlag() }));
bind("new-a", () => { selected = new Set(); run("POST", "/api/sample", { which: "a", detect: detectFlag() }); });
bind("new-b", () => run("POST", "/api/sample", { which: "b", detect: detectFlag() }));
bind("go-seed", () => {
  selected = new Set();
  run("POST", "/api/sample", { which: "a", seed: num("seed"), index: num("index"), detect: detectFlag() });
});
$("show-kp").addEventListener("change", () => document.body.classList.toggle("hide-kp", !$("show-kp").checked));
$("show-det").addEventListener("change", () => run("GET", `/api/state?detect=${detectFlag() ? 1 : 0}`));
bind("gif", async () => {
  setBusy(+1);
  try {
    const res = await fetch(`/api/animation.gif?from=${encodeURIComponent($("gif-from").value)}&to=current`);
    if (!res.ok) throw new Error((await res.json()).error);
    const url = URL.createObjectURL(await res.blob());
    $("gif-view").src = url;
    $("gif-view").hidden = false;
    $("gif-link").href = url;
    $("gif-link").hidden = false;
  } catch (e) {
    setError(e.message);
  } finally {
    setBusy(-1);
  }
});
document.addEventListener("keydown", (ev) => {
  if (!(ev.ctrlKey || ev.metaKey) || ev.target.tagName === "INPUT") return;
  const key = ev.key.toLowerCase();
  if (key === "z" && !ev.shiftKey) { ev.preventDefault(); $("undo").click(); }
  if (key === "y" || (key === "z" && ev.shiftKey)) { ev.preventDefault(); $("redo").click(); }
});

run("GET", "/api/state?detect=0");
