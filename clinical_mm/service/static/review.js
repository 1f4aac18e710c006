"use strict";
let current = null;
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
async function loadWorklist() {
  const rows = await (await api("/v1/worklist")).json();
  const body = $("worklist");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.className = "study" + (row.study_key === current ? " selected" : "");
    tr.dataset.study = row.study_key;
    const cells = [row.priority || "pending", row.study_key.slice(0, 18) + "…", row.state, row.review || "draft"];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 0) td.className = row.priority || "";
      tr.appendChild(td);
    });
    tr.addEventListener("click", () => openStudy(row.study_key));
    body.appendChild(tr);
  }
}
async function openStudy(id) {
  current = id;
  say("");
  try {
    const draft = await (await api("/v1/studies/" + encodeURIComponent(id) + "/draft")).json();
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
    const done = draft.status === "signed" || draft.status === "rejected";
    for (const b of ["save", "sign", "reject"]) $(b).disabled = done;
    $("viewer").className = "open";
    const image = await (await api("/v1/studies/" + encodeURIComponent(id) + "/preview.png")).blob();
    $("preview").src = URL.createObjectURL(image);
  } catch (e) { say(e.message); }
  await loadWorklist().catch((e) => say(e.message));
}
async function act(path, body, done) {
  try {
    await api("/v1/studies/" + encodeURIComponent(current) + path, {
      method: path === "/draft" ? "PUT" : "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body)});
    say(done);
    await openStudy(current);
    say(done);
  } catch (e) { say(e.message); }
}
$("connect").addEventListener("click", () => {
  sessionStorage.setItem("cmm-token", $("token").value.trim());
  loadWorklist().then(() => say("")).catch((e) => say(e.message));
});
$("save").addEventListener("click", () => act("/draft", {findings: $("findings").value, impression: $("impression").value}, "Draft saved."));
$("sign").addEventListener("click", () => act("/sign", {findings: $("findings").value, impression: $("impression").value}, "Report signed (final)."));
$("reject").addEventListener("click", () => act("/reject", {reason: $("reason").value}, "Draft rejected."));
if (token()) loadWorklist().catch((e) => say(e.message));
