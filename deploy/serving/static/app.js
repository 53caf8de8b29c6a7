// The search page: pick or drop an image, POST it to /search, show the matches.
// Everything is built with textContent (never innerHTML): paths and labels come from files.
"use strict";

const state = { file: null, queryUrl: null, seq: 0 };
const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function loadStats() {
  try {
    const r = await fetch("/stats");
    const s = await r.json();
    $("stats").textContent = `${s.database_size} images · ${s.bit}-bit codes · index ${s.index_backend}` +
      ` · model ${s.model_fingerprint.slice(0, 12)}` + (s.rescore ? ` · rescoring the ${s.rescore} nearest` : "");
    $("k").max = s.limits.max_k;
    $("radius").max = s.bit;
  } catch (e) {
    $("stats").textContent = "cannot reach the service";
  }
}

function useFile(file) {
  if (!file) return;
  state.file = file;
  if (state.queryUrl) URL.revokeObjectURL(state.queryUrl);
  state.queryUrl = URL.createObjectURL(file);
  search();
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Before the first answer and after a failed search nothing but the controls is on the page:
// no query tile without an image, no results of an earlier query under an error.
function clearResults() {
  $("results").hidden = true;
  $("query-image").removeAttribute("src");
  $("query-code").textContent = "";
  $("matches").replaceChildren();
}

function render(result) {
  $("results").hidden = false;
  $("query-image").src = state.queryUrl;
  $("query-code").textContent = `${result.query.bit} bits: ${result.query.hex}`;
  const grid = $("matches");
  grid.replaceChildren();
  for (const m of result.matches) {
    const fig = el("figure", "match");
    fig.dataset.distance = m.distance;
    fig.dataset.path = m.path;
    const img = el("img");
    img.src = m.url;
    img.alt = m.path;
    img.loading = "lazy";
    const cap = el("figcaption");
    cap.append(el("span", "rank", `#${m.rank} `), el("span", "distance", `d = ${m.distance}`));
    if (typeof m.score === "number") cap.append(el("span", "score", ` cos ${m.score.toFixed(3)}`));  // --rescore
    cap.append(el("span", "path", m.path), el("span", "labels", m.labels.join(", ") || "no labels"));
    fig.append(img, cap);
    grid.append(fig);
  }
  if (!result.matches.length) grid.append(el("p", "empty", "no match within this radius"));
  const within = result.within_radius === null ? "" : `, ${result.within_radius} within radius ${result.radius}`;
  const t = result.timing_ms;
  setStatus(`${result.matches.length} matches of ${result.database_size}${within} · ` +
            `encode ${t.encode.toFixed(1)} ms, search ${t.search.toFixed(2)} ms`, false);
}

async function search() {
  if (!state.file) return;
  const seq = ++state.seq;  // a slower earlier answer must not overwrite a later one
  const form = new FormData();
  form.append("file", state.file, state.file.name);
  form.append("k", $("k").value || "10");
  if ($("radius").value !== "") form.append("radius", $("radius").value);
  setStatus("searching…", false);
  try {
    const r = await fetch("/search", { method: "POST", body: form });
    const body = await r.json();
    if (seq !== state.seq) return;
    if (!r.ok) {
      clearResults();
      setStatus(`error ${r.status}: ${body.detail}`, true);
      return;
    }
    render(body);
  } catch (e) {
    if (seq === state.seq) {
      clearResults();
      setStatus(`request failed: ${e}`, true);
    }
  }
}

function setup() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => useFile(e.target.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => { e.preventDefault(); useFile(e.dataTransfer.files[0]); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
  $("k").addEventListener("change", search);
  $("radius").addEventListener("change", search);
  clearResults();
  loadStats();
}

document.addEventListener("DOMContentLoaded", setup);
