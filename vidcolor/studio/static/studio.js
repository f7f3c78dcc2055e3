// vidcolor studio: the page only asks the server; every picture is made by the library.
"use strict";

const TOKEN = window.VIDCOLOR_TOKEN;
const $ = (id) => document.getElementById(id);
const state = {
  film: null, shot: 0, frame: null, kind: "steered", strip: "auto", polling: null,
  failures: 0, shown: 0, hintQueue: Promise.resolve(),
};

function url(path, params = {}) {
  const q = new URLSearchParams({ ...params, token: TOKEN });
  return `${path}?${q}`;
}

async function api(path, { method = "GET", json, body, type } = {}) {
  const headers = { "X-Vidcolor-Token": TOKEN };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (type) {
    headers["Content-Type"] = type;
  }
  const r = await fetch(path, { method, headers, body });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : {};
  if (!r.ok) {
    const err = new Error(data.error || `${r.status} ${r.statusText}`);
    err.status = r.status;
    err.kind = data.kind;
    throw err;
  }
  return data;
}

function say(text, error = false) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (error) li.className = "error";
  $("log").prepend(li);
}

function fmtTime(s) {
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${(s - 60 * m).toFixed(2).padStart(5, "0")}`;
}

const shot = () => state.film.shots[state.shot];
const frame = () => state.frame;

async function load() {
  state.film = await api("/api/film");
  const f = state.film;
  $("film-info").textContent =
    `${f.film} · ${f.frames} frames · ${f.width}×${f.height} · ${f.shots.length} shots`;
  $("dirty").hidden = !f.dirty;
  state.shot = Math.min(state.shot, f.shots.length - 1);
  drawStrip();
  selectShot(state.shot, { keepPos: true });
  showRender(f.render);
}

function drawStrip() {
  const strip = $("strip");
  strip.textContent = "";
  state.film.shots.forEach((s, i) => {
    const card = document.createElement("div");
    card.className = "shot" + (i === state.shot ? " selected" : "");
    card.dataset.index = i;
    const thumbs = document.createElement("div");
    thumbs.className = "thumbs";
    for (const which of ["first", "key", "last"]) {
      const img = document.createElement("img");
      img.loading = "lazy";
      img.alt = `shot ${i + 1} ${which}`;
      img.src = url(`/api/shot/${i}/thumb/${which}`, { kind: state.strip, v: s.version });
      thumbs.append(img);
    }
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = `${i + 1}: ${fmtTime(s.start)}–${fmtTime(s.end)} (${s.first}–${s.last})`;
    card.append(thumbs, label);
    card.addEventListener("click", () => selectShot(i));
    dropTarget(card, () => i);
    strip.append(card);
  });
}

function selectShot(i, { keepPos = false } = {}) {
  const changed = i !== state.shot;
  state.shot = i;
  document.querySelectorAll(".shot").forEach((c) =>
    c.classList.toggle("selected", Number(c.dataset.index) === i));
  const s = shot();
  const f = state.frame;
  if (!keepPos || changed || f === null || f < s.first || f > s.last) state.frame = s.keyframe;
  $("scrub").min = s.first;
  $("scrub").max = s.last;
  $("scrub").value = state.frame;
  $("shot-title").textContent = `Shot ${i + 1}`;
  $("shot-facts").textContent =
    `frames ${s.first}–${s.last}, ${fmtTime(s.start)}–${fmtTime(s.end)}, keyframe ${s.keyframe}`;
  $("saturation").value = s.saturation;
  $("saturation-value").textContent = s.saturation;
  $("reference").textContent = s.reference ? `reference: ${s.reference} ` : "no reference photo";
  if (s.reference) $("reference").append(button("remove", () => clearImage("reference")));
  $("keyframes").textContent = s.keyframes.length
    ? `colour keyframes: ${s.keyframes.map((k) => `${k.file} (frame ${k.frame})`).join(", ")} `
    : "";
  if (s.keyframes.length) $("keyframes").append(button("forget", () => clearImage("keyframes")));
  showFrame();
  drawFlicker();
}

function button(text, onclick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.addEventListener("click", onclick);
  return b;
}

function hintsHere() {
  return (shot().hints[String(frame())] || []).slice();
}

async function showFrame() {
  const s = shot();
  const f = frame();
  const kind = state.kind;
  const mine = ++state.shown;
  $("frame-label").textContent = `${f}${f === s.keyframe ? " (keyframe)" : ""}`;
  drawSpots();
  const img = $("big");
  const t0 = performance.now();
  $("busy").hidden = false;
  try {
    const r = await fetch(url(`/api/shot/${state.shot}/frame/${f}`, { kind, v: s.version }),
      { headers: { "X-Vidcolor-Token": TOKEN } });
    if (!r.ok) throw new Error((await r.json()).error || `${r.status}`);
    const blob = await r.blob();
    if (mine !== state.shown) return;  // a newer picture was asked for meanwhile
    const shown = Number(r.headers.get("X-Frame"));
    await new Promise((done, fail) => {
      img.onload = done;
      img.onerror = () => fail(new Error(`frame ${f} is not a picture`));
      const old = img.src;
      img.src = URL.createObjectURL(blob);
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    });
    img.dataset.version = String(s.version);
    img.dataset.kind = kind;
    const ms = performance.now() - t0;
    const near = shown !== f ? ` (nearest propagated frame ${shown})` : "";
    $("latency").textContent = `${kind} frame ${f}${near}: ${(ms / 1000).toFixed(2)} s`;
  } catch (e) {
    say(`frame ${f}: ${e.message}`, true);
  } finally {
    if (mine === state.shown) $("busy").hidden = true;
  }
}

function drawSpots() {
  const box = $("spots");
  box.textContent = "";
  const list = $("hint-list");
  list.textContent = "";
  const { width, height } = state.film;
  hintsHere().forEach((p, n) => {
    const dot = document.createElement("div");
    dot.className = "spot";
    dot.style.left = `${(100 * p.x) / width}%`;
    dot.style.top = `${(100 * p.y) / height}%`;
    dot.style.background = p.color;
    dot.title = `${p.color} at (${Math.round(p.x)}, ${Math.round(p.y)}): click to remove`;
    dot.addEventListener("click", (e) => { e.stopPropagation(); removeHint(n); });
    box.append(dot);
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = p.color;
    li.append(sw, `${p.color} at (${Math.round(p.x)}, ${Math.round(p.y)}) `,
      button("remove", () => removeHint(n)));
    list.append(li);
  });
}

function sendHints(points) {
  // the list changes here at once (quick clicks build on each other); requests go in order
  const i = state.shot;
  const f = frame();
  const s = state.film.shots[i];
  s.hints[String(f)] = points;
  drawSpots();
  state.hintQueue = state.hintQueue.then(async () => {
    const r = await api(`/api/shot/${i}/hints`, { method: "POST", json: { frame: f, points } });
    s.version = r.version;
    if (state.shot === i) edited();
  }).catch((e) => say(e.message, true));
  return state.hintQueue;
}

function edited() {
  state.film.dirty = true;
  $("dirty").hidden = false;
  if (state.kind !== "steered") setKind("steered");
  showFrame();
  refreshThumbs(state.shot);
}

function refreshThumbs(i) {
  const card = document.querySelector(`.shot[data-index="${i}"]`);
  if (!card) return;
  const v = state.film.shots[i].version;
  card.querySelectorAll("img").forEach((img, k) => {
    const which = ["first", "key", "last"][k];
    img.src = url(`/api/shot/${i}/thumb/${which}`, { kind: state.strip, v });
  });
}

function setKind(kind) {
  state.kind = kind;
  document.querySelector(`input[name=kind][value=${kind}]`).checked = true;
}

async function removeHint(n) {
  const pts = hintsHere();
  pts.splice(n, 1);
  await guard(sendHints(pts));
}

async function guard(promise) {
  try {
    return await promise;
  } catch (e) {
    say(e.message, true);
    return undefined;
  }
}

$("stage").addEventListener("click", (e) => {
  const img = $("big");
  const r = img.getBoundingClientRect();
  if (e.clientX > r.right || e.clientY > r.bottom) return;
  const x = ((e.clientX - r.left) / r.width) * state.film.width;
  const y = ((e.clientY - r.top) / r.height) * state.film.height;
  const pts = hintsHere();
  pts.push({ x: Math.min(state.film.width - 1, Math.max(0, x)),
             y: Math.min(state.film.height - 1, Math.max(0, y)), color: $("colour").value });
  guard(sendHints(pts));
});

document.querySelectorAll("input[name=kind]").forEach((r) =>
  r.addEventListener("change", () => { state.kind = r.value; showFrame(); }));
document.querySelectorAll("input[name=strip-kind]").forEach((r) =>
  r.addEventListener("change", () => { state.strip = r.value; drawStrip(); }));
let scrubTimer = null;
$("scrub").addEventListener("input", () => {
  state.frame = Number($("scrub").value);
  $("frame-label").textContent = String(state.frame);
  clearTimeout(scrubTimer);
  scrubTimer = setTimeout(showFrame, 120);  // while dragging, ask only for where it stops
});

$("saturation").addEventListener("change", () => guard((async () => {
  const value = Number($("saturation").value);
  $("saturation-value").textContent = value;
  const r = await api(`/api/shot/${state.shot}/saturation`, { method: "POST", json: { value } });
  shot().saturation = value;
  shot().version = r.version;
  edited();
})()));

async function reloadAfter(promise, text) {
  const r = await guard(promise);
  if (r === undefined) return;
  if (text) say(text);
  for (const note of r.notes || []) say(note, true);
  await load();
}

$("use-key").addEventListener("click", () => reloadAfter(
  api(`/api/shot/${state.shot}/keyframe`, { method: "POST", json: { frame: frame() } }),
  `shot ${state.shot + 1}: keyframe is now frame ${frame()}`));

function cut(op, i, f, text) {
  return reloadAfter(api("/api/cuts", { method: "POST", json: { op, shot: i, frame: f } }), text);
}
$("split").addEventListener("click", () =>
  cut("split", state.shot, frame(), `split shot ${state.shot + 1} at frame ${frame()}`));
$("merge").addEventListener("click", () =>
  cut("merge", state.shot, null, `merged shots ${state.shot + 1} and ${state.shot + 2}`));
$("start-here").addEventListener("click", () => {
  if (state.shot === 0) { say("the first shot starts at frame 0", true); return; }
  const f = frame();
  cut("move", state.shot - 1, f, `the cut now falls at frame ${f}`);  // this shot keeps its index
});
$("end-here").addEventListener("click", () =>
  cut("move", state.shot, frame() + 1, `the cut now falls at frame ${frame() + 1}`));

async function uploadTo(i, file) {
  say(`uploading ${file.name} to shot ${i + 1}…`);
  const r = await guard(api(`/api/shot/${i}/image`,
    { method: "PUT", body: file, type: file.type || "application/octet-stream" }));
  if (r === undefined) return;
  say(`shot ${i + 1}: ${file.name} is its ${r.kind === "keyframe" ? "colour keyframe" : "reference photo"} (${r.file})`);
  state.shot = i;
  state.film.dirty = true;
  await load();
  setKind("steered");
  showFrame();
}

function dropTarget(el, index) {
  el.addEventListener("dragover", (e) => { e.preventDefault(); el.classList.add("dragover"); });
  el.addEventListener("dragleave", () => el.classList.remove("dragover"));
  el.addEventListener("drop", (e) => {
    e.preventDefault();
    el.classList.remove("dragover");
    const file = e.dataTransfer.files[0];
    if (file) uploadTo(index(), file);
  });
}
dropTarget($("drop"), () => state.shot);
dropTarget($("stage"), () => state.shot);
$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) uploadTo(state.shot, file);
  $("file").value = "";
});

async function clearImage(what) {
  await reloadAfter(api(url(`/api/shot/${state.shot}/image`, { what }), { method: "DELETE" }),
    `shot ${state.shot + 1}: ${what} removed`);
}

async function save(force = false) {
  try {
    const r = await api("/api/save", { method: "POST", json: { force } });
    say(`saved ${r.manifest} (${r.shots} shots)` +
      (r.kept.length ? `; kept your files ${r.kept.join(", ")}` : ""));
    state.film.dirty = false;
    $("dirty").hidden = true;
    return true;
  } catch (e) {
    if (e.kind === "Conflict" && !force && confirm(`${e.message}\n\nSave anyway?`)) {
      return save(true);
    }
    say(e.message, true);
    return false;
  }
}
$("save").addEventListener("click", () => save());

async function render(overwrite = false) {
  if (state.film.dirty && !(await save())) return;
  try {
    const r = await api("/api/render", { method: "POST", json: { overwrite } });
    say(`render started: ${r.output}`);
    showRender(r);
  } catch (e) {
    if (e.kind === "OutputError" && !overwrite &&
        confirm(`${e.message}\n\nReplace it?`)) return render(true);
    say(e.message, true);
  }
}
$("render").addEventListener("click", () => render());
$("cancel").addEventListener("click", () => guard(api("/api/render/cancel", { method: "POST" })));

function showRender(r) {
  const running = r.state === "running" || r.state === "measuring";
  $("cancel").hidden = !running;
  $("render").disabled = running;
  const p = $("progress");
  p.max = r.total || 1;
  p.value = r.state === "done" ? p.max : r.frames;
  let text = { idle: "not rendered yet" }[r.state] || r.state;
  if (running) {
    text = `${r.state === "measuring" ? "measuring flicker" : "rendering"}: ${r.frames}` +
      `${r.total ? ` / ${r.total}` : ""} frames, ${r.fps} fps` +
      (r.eta != null ? `, ETA ${fmtTime(r.eta)}` : "");
  } else if (r.state !== "idle") {
    text = `${r.state}: ${r.message}`;
  }
  $("render-state").textContent = text;
  if (running && !state.polling) {
    state.failures = 0;
    state.polling = setInterval(async () => {
      try {
        showRender(await api("/api/render"));
        state.failures = 0;
      } catch (e) {
        if (++state.failures === 5) {  // the studio stopped?
          clearInterval(state.polling);
          state.polling = null;
          say(`lost the studio: ${e.message}`, true);
        }
      }
    }, 500);
  }
  if (!running && state.polling) {
    clearInterval(state.polling);
    state.polling = null;
    if (r.state === "done") say(`render done: ${r.message}`);
    else if (r.state !== "idle") say(`render ${r.state}: ${r.message}`, r.state === "failed");
  }
  state.film.render = r;
  $("result").hidden = r.state !== "done";
  if (r.state === "done") {
    $("output-path").textContent = `output: ${r.output}`;
    const v = String(Math.round(r.elapsed * 1000));
    if ($("video").dataset.v !== v) {
      $("video").dataset.v = v;
      $("video").src = url("/api/render/output", { v });
      $("sheet").src = url("/api/render/sheet", { v });
      loadFlicker();
    }
  }
}

async function loadFlicker() {
  state.flicker = await guard(api("/api/render/flicker"));
  drawFlicker();
}

function drawFlicker() {
  const svg = $("flicker");
  svg.textContent = "";
  const data = state.flicker;
  if (!data || !data.values.length) return;
  const s = shot();
  const vals = data.values.slice(s.first, s.last + 1);
  const finite = vals.filter((v) => v != null);
  let top = 1e-6;
  let peak = 0;
  for (const v of data.values) if (v != null && v > top) top = v;
  for (const v of finite) if (v > peak) peak = v;
  top *= 1.1;
  const W = 400, H = 120, n = Math.max(1, vals.length - 1);
  const ns = "http://www.w3.org/2000/svg";
  const pts = vals.map((v, k) => v == null ? null :
    `${((k / n) * (W - 10) + 5).toFixed(1)},${(H - 15 - (v / top) * (H - 25)).toFixed(1)}`)
    .filter(Boolean);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.join(" "));
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#5fa8f0");
  line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  const mean = finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : 0;
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "5");
  label.setAttribute("y", String(H - 3));
  label.setAttribute("fill", "#bbb");
  label.setAttribute("font-size", "10");
  label.textContent = `shot ${state.shot + 1}, frames ${s.first}–${s.last}: mean ` +
    `${mean.toExponential(2)}, max ${peak.toExponential(2)}`;
  svg.append(label);
}

window.addEventListener("beforeunload", (e) => {
  if (state.film && state.film.dirty) e.preventDefault();
});

load().catch((e) => say(e.message, true));
