"use strict";
// The page's script: the stream with its top-k and FPS (polled from v1/stream), and the upload form.
// A token given as ?access_token=... goes with every request (header for fetch, query for the <img>).
const token = new URLSearchParams(location.search).get("access_token");
const auth = token ? { Authorization: "Bearer " + token } : {};
const withToken = (url) => (token ? url + "?access_token=" + encodeURIComponent(token) : url);
const $ = (id) => document.getElementById(id);

// unknown: the model sees none of its classes; the categories are then shown as guesses below that verdict
function showCategories(list, categories, unknown = false) {
  list.replaceChildren();
  if (unknown) {
    const li = document.createElement("li");
    li.className = "unknown";
    li.textContent = "unknown: no known object";
    list.append(li);
  }
  for (const c of categories) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = unknown ? "(" + c.label + "?)" : c.label;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = (100 * c.score).toFixed(1) + "%";
    bar.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = (100 * c.score).toFixed(1) + "%";
    li.append(name, bar, pct);
    list.append(li);
  }
}

async function getJson(url, options = {}) {
  const response = await fetch(url, { cache: "no-store", ...options, headers: auth });
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON: the status says it */ }
  if (!response.ok) throw new Error(body && body.error ? body.error.message : response.status + " " + response.statusText);
  return body;
}

async function loadModel() {
  try {
    const m = await getJson("v1/model");
    $("model").textContent = m.name + " on " + m.backend;
  } catch (e) { $("model").textContent = e.message; }
}

async function poll() {
  try {
    const s = await getJson("v1/stream");
    $("fps").textContent = "FPS " + (s.fps != null ? s.fps.toFixed(1) : "-"); // null until measured
    if (s.frames > 0) showStream();
    $("state").textContent = s.state + (s.inference_ms != null ? " | inference " + s.inference_ms.toFixed(1) + " ms" : "");
    showCategories($("top"), s.categories, s.unknown === true);
  } catch (e) { $("state").textContent = e.message; }
  setTimeout(poll, 500);
}

// the placeholder stays until the first frame has arrived (no black strip before it)
function showStream() {
  $("waiting").hidden = true;
  $("stream").hidden = false;
}

async function startStream() {
  const response = await fetch("v1/stream", { headers: auth, cache: "no-store" });
  if (response.status === 404) {
    $("waiting").hidden = true;
    $("stream").hidden = true;
    $("nostream").hidden = false;
    return;
  }
  $("stream").addEventListener("load", showStream, { once: true });
  $("stream").src = withToken("stream.mjpg");
  poll();
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  $("error").textContent = "";
  $("timing").textContent = "";
  $("result").replaceChildren();
  $("preview").src = URL.createObjectURL(file);
  $("preview").hidden = false;
  const form = new FormData();
  form.append("image", file);
  try {
    const body = await getJson("v1/classify", { method: "POST", body: form });
    showCategories($("result"), body.categories, body.unknown === true);
    $("timing").textContent = body.model + ": " + body.timing_ms.total.toFixed(1) + " ms";
  } catch (e) { $("error").textContent = e.message; }
});

loadModel();
startStream();
