"use strict";
let current = null;
// identities read this session, by study (in memory only: PHI is never put in storage)
const identities = new Map();
const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem("cmm-token") || "";
async function api(path, options = {}) {
  const headers = Object.assign({"Authorization": "Bearer " + token()}, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, {headers}));
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(response.status + ": " + detail);
  }
  return response;
}
function say(text) { $("status").textContent = text; }
const studyPath = (id, rest) => "/v1/studies/" + encodeURIComponent(id) + rest;

// ------------------------------------------------------------------ identity (radiologist only, audited)
function personName(pn) {
  // DICOM PN "FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX" (first component group) as "FAMILY, GIVEN MIDDLE"
  if (!pn) return "";
  const parts = pn.split("=")[0].split("^").map((p) => p.trim());
  const rest = parts.slice(1).filter(Boolean).join(" ");
  return rest ? parts[0] + ", " + rest : parts[0];
}
function identityLabel(id) {
  const who = identities.get(id);
  if (!who) return "";
  return [personName(who.patient_name), who.accession].filter(Boolean).join(" · ") || "not recorded";
}
function clearIdentity() {
  $("identity").hidden = true;
  $("patient-name").textContent = "";
  $("patient-name").title = "";
  $("accession").textContent = "";
  $("identity-note").hidden = true;
  $("identity-note").textContent = "";
}
async function showIdentity(id) {
  try {
    if (!identities.has(id)) identities.set(id, await (await api(studyPath(id, "/identity"))).json());
  } catch (e) {
    if (current !== id) return;
    $("identity-note").textContent = "Patient and accession not available (" + e.message + ").";
    $("identity-note").hidden = false;
    return;
  }
  if (current !== id) return;
  const who = identities.get(id);
  $("patient-name").textContent = personName(who.patient_name) || "not recorded";
  $("patient-name").title = who.patient_name || "";
  $("accession").textContent = who.accession || "not recorded";
  $("identity").hidden = false;
}

// ------------------------------------------------------------------ the image: window/level and zoom on a canvas
const PRESETS = {full: [128, 256], lungs: [85, 170], mediastinum: [170, 170], contrast: [128, 96]};
const view = {study: null, grey: null, windowed: null, center: 128, width: 256, zoom: 1, panX: 0, panY: 0,
              regions: {}};
const REGION_COLOURS = ["#ff5050", "#ffd000", "#40c0ff", "#50ff80", "#ff80ff", "#ffa040", "#a0a0ff"];
function setWindow(center, width) {
  view.center = Math.max(0, Math.min(255, Math.round(center)));
  view.width = Math.max(1, Math.min(512, Math.round(width)));
  $("wl-center").value = view.center; $("wl-center-value").textContent = view.center;
  $("wl-width").value = view.width; $("wl-width-value").textContent = view.width;
  const preset = Object.keys(PRESETS).find((k) => PRESETS[k][0] === view.center && PRESETS[k][1] === view.width);
  $("wl-preset").value = preset || "custom";
  applyWindow();
}
function applyWindow() {
  // the preview's grey values through the window (linear, clipped), into an off-screen canvas the size of the image
  if (!view.grey) return;
  const lut = new Uint8ClampedArray(256);
  const low = view.center - view.width / 2;
  for (let v = 0; v < 256; v++) lut[v] = Math.round(((v - low) / view.width) * 255);
  const src = view.grey.data;
  const out = new ImageData(view.grey.width, view.grey.height);
  for (let i = 0; i < src.length; i += 4) {
    const g = lut[src[i]];
    out.data[i] = g; out.data[i + 1] = g; out.data[i + 2] = g; out.data[i + 3] = 255;
  }
  view.windowed.getContext("2d").putImageData(out, 0, 0);
  draw();
}
function placement() {
  // where the image lies on the canvas: scale (fitted, times the zoom) and top-left corner, in canvas pixels
  const canvas = $("preview");
  const iw = view.windowed.width, ih = view.windowed.height;
  const scale = Math.min(canvas.width / iw, canvas.height / ih) * view.zoom;
  return {scale, x: (canvas.width - iw * scale) / 2 + view.panX, y: (canvas.height - ih * scale) / 2 + view.panY};
}
function draw() {
  const canvas = $("preview");
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!view.windowed) return;
  const at = placement();
  ctx.imageSmoothingEnabled = at.scale < 2;
  ctx.drawImage(view.windowed, at.x, at.y, view.windowed.width * at.scale, view.windowed.height * at.scale);
  if ($("show-regions").checked) drawRegions(ctx, at);
  $("zoom-value").textContent = Math.round(view.zoom * 100) + "%";
}
function drawRegions(ctx, at) {
  // each raised flag's boxes and peak, given on the image's 0-100 grid, in image coordinates
  const sx = view.windowed.width / 100, sy = view.windowed.height / 100;
  ctx.setTransform(at.scale, 0, 0, at.scale, at.x, at.y);
  ctx.lineWidth = 2 / at.scale;
  ctx.font = (13 / at.scale) + "px sans-serif";
  Object.entries(view.regions).forEach(([name, region], i) => {
    ctx.strokeStyle = ctx.fillStyle = REGION_COLOURS[i % REGION_COLOURS.length];
    for (const [x0, y0, x1, y1] of region.boxes) {
      ctx.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
      ctx.fillText(name.replace("_", " "), x0 * sx + 3 / at.scale, y0 * sy + 14 / at.scale);
    }
    ctx.beginPath();
    ctx.arc(region.peak[0] * sx, region.peak[1] * sy, 4 / at.scale, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}
function showAnalysis(draft) {
  // where the model looks (legend), and whether the image is outside the validated domain
  view.regions = draft.regions || {};
  const legend = $("regions");
  legend.replaceChildren();
  Object.entries(view.regions).forEach(([name, region], i) => {
    const li = document.createElement("li");
    li.style.color = REGION_COLOURS[i % REGION_COLOURS.length];
    li.textContent = name.replace("_", " ") + ": " + region.boxes.map((b) => "[" + b.join(", ") + "]").join(" ") +
      " (0-100 grid of the image; occlusion sensitivity of the model's image encoder)";
    legend.appendChild(li);
  });
  const ood = $("ood");
  ood.hidden = !draft.ood || draft.ood.in_domain;
  ood.textContent = ood.hidden ? "" : "Outside the validated domain: this image is unlike the images the model was " +
    "validated on (distance " + draft.ood.score + " > " + draft.ood.threshold + "). Read the draft and flags with " +
    "extra care; the study's priority is never lowered for it.";
}
function zoomAt(factor, cx, cy) {
  // zoom by factor keeping the image point under canvas point (cx, cy) in place
  if (!view.windowed) return;
  const before = placement();
  const ix = (cx - before.x) / before.scale, iy = (cy - before.y) / before.scale;
  view.zoom = Math.max(0.5, Math.min(16, view.zoom * factor));
  view.panX = 0; view.panY = 0;
  const after = placement();  // centred at the new zoom: move it so that (ix, iy) is back under (cx, cy)
  view.panX = cx - (after.x + ix * after.scale);
  view.panY = cy - (after.y + iy * after.scale);
  draw();
}
function resetView() {
  view.zoom = 1; view.panX = 0; view.panY = 0;
  setWindow(...PRESETS.full);
}
async function showImage(id, blob) {
  const bitmap = await createImageBitmap(blob);
  if (current !== id) return;
  const grey = document.createElement("canvas");
  grey.width = bitmap.width; grey.height = bitmap.height;
  const gctx = grey.getContext("2d");
  gctx.drawImage(bitmap, 0, 0);
  view.grey = gctx.getImageData(0, 0, bitmap.width, bitmap.height);
  view.windowed = document.createElement("canvas");
  view.windowed.width = bitmap.width; view.windowed.height = bitmap.height;
  view.study = id;
  resetView();
  $("preview").dataset.study = id;
}
function canvasPoint(event) {
  const canvas = $("preview");
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}
let drag = null;
$("preview").addEventListener("pointerdown", (event) => {
  if (!view.windowed) return;
  event.preventDefault();
  $("preview").setPointerCapture(event.pointerId);
  drag = {point: canvasPoint(event), pan: event.shiftKey || event.button === 1};
});
$("preview").addEventListener("pointermove", (event) => {
  if (!drag) return;
  const [x, y] = canvasPoint(event);
  const dx = x - drag.point[0], dy = y - drag.point[1];
  drag.point = [x, y];
  if (drag.pan) {
    view.panX += dx; view.panY += dy;
    draw();
  } else {
    setWindow(view.center - dy * 0.5, view.width + dx);
  }
});
for (const name of ["pointerup", "pointercancel"]) $("preview").addEventListener(name, () => { drag = null; });
$("preview").addEventListener("wheel", (event) => {
  event.preventDefault();
  const [x, y] = canvasPoint(event);
  zoomAt(event.deltaY < 0 ? 1.25 : 0.8, x, y);
}, {passive: false});
$("wl-center").addEventListener("input", () => setWindow(Number($("wl-center").value), view.width));
$("wl-width").addEventListener("input", () => setWindow(view.center, Number($("wl-width").value)));
$("wl-preset").addEventListener("change", () => setWindow(...PRESETS[$("wl-preset").value]));
$("zoom-in").addEventListener("click", () => zoomAt(1.25, $("preview").width / 2, $("preview").height / 2));
$("zoom-out").addEventListener("click", () => zoomAt(0.8, $("preview").width / 2, $("preview").height / 2));
$("view-reset").addEventListener("click", resetView);

// ------------------------------------------------------------------ worklist and review
async function loadWorklist() {
  const rows = await (await api("/v1/worklist")).json();
  const body = $("worklist");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.className = "study" + (row.study_key === current ? " selected" : "");
    tr.dataset.study = row.study_key;
    const cells = [row.priority || "pending", row.study_key.slice(0, 14) + "…", identityLabel(row.study_key),
                   row.state, row.review || "draft"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 0) td.className = row.priority || "";
      if (i === 2) td.className = "who";
      tr.appendChild(td);
    });
    tr.addEventListener("click", () => openStudy(row.study_key));
    body.appendChild(tr);
  }
}
async function openStudy(id) {
  const another = current !== id;
  current = id;
  say("");
  if (another) {  // never show one study's patient or image beside another's draft
    clearIdentity();
    view.grey = null; view.windowed = null; view.study = null; view.regions = {};
    delete $("preview").dataset.study;
    $("answer").textContent = "";
    $("zero-shot").textContent = "";
    $("similar").replaceChildren();
    draw();
  }
  try {
    const draft = await (await api(studyPath(id, "/draft"))).json();
    if (current !== id) return;
    $("study-title").textContent = "Study " + id.slice(0, 24) + "… (" + draft.priority + ", " + draft.status + ")";
    $("findings").value = draft.findings;
    $("impression").value = draft.impression;
    const flags = $("flags");
    flags.replaceChildren();
    for (const [name, p] of Object.entries(draft.flags)) {
      const span = document.createElement("span");
      span.textContent = name + " " + Number(p).toFixed(2);
      if (draft.raised.includes(name)) span.className = "raised";
      flags.appendChild(span);
    }
    showAnalysis(draft);
    draw();
    const done = draft.status === "signed" || draft.status === "rejected";
    for (const b of ["save", "sign", "reject"]) $(b).disabled = done;
    $("viewer").className = "open";
    await showIdentity(id);
    if (view.study !== id) await showImage(id, await (await api(studyPath(id, "/preview.png"))).blob());
    if (another) await showSimilar(id);
  } catch (e) { say(e.message); }
  await loadWorklist().catch((e) => say(e.message));
}
// ------------------------------------------------------------------ questions and similar signed cases
async function showSimilar(id) {
  const list = $("similar");
  list.replaceChildren();
  try {
    const found = await (await api(studyPath(id, "/similar?k=3"))).json();
    if (current !== id) return;
    if (!found.similar.length) {
      const li = document.createElement("li");
      li.textContent = "No signed case yet.";
      list.appendChild(li);
    }
    for (const c of found.similar) {
      const li = document.createElement("li");
      li.textContent = c.report + " (similarity " + Number(c.score).toFixed(2) + ", signed " + c.signed_at.slice(0, 10) + ")";
      list.appendChild(li);
    }
  } catch (e) {
    const li = document.createElement("li");
    li.textContent = "Similar cases not available (" + e.message + ").";
    list.appendChild(li);
  }
}
async function ask() {
  const id = current, question = $("question").value.trim();
  if (!id || !question) return;
  $("answer").textContent = "Asking…";
  try {
    const body = await post(id, "/ask", {question});
    if (current !== id) return;
    $("answer").textContent = "Q: " + body.question + " A: " + body.answer + " (preliminary, from the model)";
  } catch (e) { $("answer").textContent = e.message; }
}
async function post(id, path, body) {
  return (await api(studyPath(id, path), {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})).json();
}
async function locate() {
  // a phrase's region joins the overlay under its own name
  const id = current, phrase = $("phrase").value.trim();
  if (!id || !phrase) return;
  try {
    const found = await post(id, "/ground", {phrase});
    if (current !== id) return;
    view.regions = Object.assign({}, view.regions, {["\u201c" + found.phrase + "\u201d"]: found.region});
    $("show-regions").checked = true;
    draw();
  } catch (e) { say(e.message); }
}
async function scoreFindings() {
  const id = current;
  const findings = $("zs-findings").value.split(";").map((f) => f.trim()).filter((f) => f);
  if (!id || !findings.length) return;
  try {
    const found = await post(id, "/zero-shot", {findings});
    if (current !== id) return;
    $("zero-shot").textContent = found.zero_shot.map((s) => s.finding + " " + Number(s.probability).toFixed(2) +
      (s.calibrated ? "" : " (uncalibrated)")).join("; ") + " (zero-shot, from the model; no priority changes)";
  } catch (e) { $("zero-shot").textContent = e.message; }
}
async function act(path, body, done) {
  try {
    await api(studyPath(current, path), {
      method: path === "/draft" ? "PUT" : "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)});
    say(done);
    await openStudy(current);
    say(done);
  } catch (e) { say(e.message); }
}
$("connect").addEventListener("click", () => {
  // another credential: nothing read with the last one stays on the page
  sessionStorage.setItem("cmm-token", $("token").value.trim());
  identities.clear();
  current = null;
  clearIdentity();
  view.grey = null; view.windowed = null; view.study = null; view.regions = {};
  $("viewer").className = "";
  $("worklist").replaceChildren();
  loadWorklist().then(() => say("")).catch((e) => say(e.message));
});
$("show-regions").addEventListener("change", draw);
$("ask").addEventListener("click", ask);
$("locate").addEventListener("click", locate);
$("score").addEventListener("click", scoreFindings);
$("question").addEventListener("keydown", (e) => { if (e.key === "Enter") ask(); });
$("save").addEventListener("click", () => act("/draft", {findings: $("findings").value, impression: $("impression").value}, "Draft saved."));
$("sign").addEventListener("click", () => act("/sign", {findings: $("findings").value, impression: $("impression").value}, "Report signed (final)."));
$("reject").addEventListener("click", () => act("/reject", {reason: $("reason").value}, "Draft rejected."));
if (token()) loadWorklist().catch((e) => say(e.message));
