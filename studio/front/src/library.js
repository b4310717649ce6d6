// Library: drag-and-drop uploads through tus (resumable), URL import, and the list with live status (one SSE
// stream for the page).
import { Upload } from "tus-js-client";
import { $, api, el, flash, fmtDate, fmtDuration, BASE, CSRF, PERMS } from "./util.js";

const BUSY = new Set(["uploading", "queued", "probing", "transcoding", "packaging"]);
let filters = {}, cursor = null;

function statusCell(a) {
  const cell = el("td", { class: "status" });
  const label = el("span", { class: `badge s-${a.status}` }, a.status);
  cell.append(label);
  if (BUSY.has(a.status)) {
    cell.append(" ", el("progress", { max: 100, value: a.progress, "aria-label": `${a.title || a.id} progress` }),
                " ", el("span", { class: "pct" }, `${Math.round(a.progress)}%`));
  } else if (a.status === "failed" && a.error) {
    cell.append(el("span", { class: "reason" }, ` ${a.error}`));
  }
  return cell;
}

function row(a) {
  const poster = a.images && a.images.poster
    ? el("img", { src: `${BASE}/media/${a.id}/${a.images.poster}`, alt: "", width: 96, height: 54, loading: "lazy" })
    : el("span", { class: "noposter", "aria-hidden": "true" });
  return el("tr", { "data-asset": a.id, "data-status": a.status, "data-created": a.created_at },
    el("td", { class: "thumb" }, poster),
    el("td", {}, el("a", { href: `/studio/assets/${encodeURIComponent(a.id)}`, class: "title" }, a.title || a.id)),
    el("td", {}, fmtDuration(a.duration)),
    statusCell(a),
    el("td", {}, fmtDate(a.created_at)));
}

async function loadPage(append) {
  const params = new URLSearchParams({ limit: "50" });
  for (const k of ["q", "status", "tag", "show", "visibility"]) if (filters[k]) params.set(k, filters[k]);
  if (append && cursor) params.set("cursor", cursor);
  const data = await api("GET", `/api/v1/assets?${params}`);
  const body = $("#asset-rows");
  if (!append) body.textContent = "";
  for (const a of data.items) body.append(row(a));
  cursor = data.next;
  $("#more").hidden = !cursor;
  $("#empty").hidden = body.children.length > 0;
}

// One server-sent event stream for the whole page (whatever the number of rows): each asset that changes
// anywhere (a stage, progress, an upload from the CLI or a colleague, an edit) arrives once and its row is
// redrawn; new assets appear at the top when no filter is set. EventSource reconnects on its own.
function applyChange(a) {
  const body = $("#asset-rows");
  const tr = body.querySelector(`tr[data-asset="${CSS.escape(a.id)}"]`);
  if (tr) { tr.replaceWith(row(a)); return; }
  if (Object.values(filters).some(Boolean)) return;  // a filtered list keeps to what the filter found
  const top = body.firstElementChild;
  if (top && new Date(a.created_at) < new Date(top.dataset.created)) return;  // older: on a page further down
  body.prepend(row(a));
  $("#empty").hidden = true;
}

function follow() {
  const source = new EventSource("/api/v1/catalog/events");
  source.addEventListener("asset", (ev) => {
    try { applyChange(JSON.parse(ev.data)); } catch (e) { /* one bad event never stops the stream */ }
  });
  document.body.dataset.live = "1";
  source.addEventListener("open", () => { document.body.dataset.live = "open"; });
}

const shown = new Set();  // ids added (or being added) by uploads: once each, however many callbacks fire

async function showNew(assetId, attempt = 0) {
  if (shown.has(assetId) || document.querySelector(`#asset-rows tr[data-asset="${CSS.escape(assetId)}"]`)) return;
  shown.add(assetId);
  try {
    const a = await api("GET", `/api/v1/assets/${encodeURIComponent(assetId)}`);
    const existing = document.querySelector(`#asset-rows tr[data-asset="${CSS.escape(assetId)}"]`);
    if (existing) existing.replaceWith(row(a)); else $("#asset-rows").prepend(row(a));
    $("#empty").hidden = true;
  } catch (e) {
    shown.delete(assetId);
    if (attempt < 5) setTimeout(() => showNew(assetId, attempt + 1), 1000);
  }
}

function uploadFile(file) {
  const bar = el("progress", { max: 100, value: 0, "aria-label": `${file.name} upload` });
  const state = el("span", { class: "state" }, "starting");
  const item = el("li", { class: "upload", "data-file": file.name }, el("span", { class: "name" }, file.name), bar, state);
  $("#uploads").append(item);
  let assetId = null;
  const upload = new Upload(file, {
    endpoint: "/api/v1/uploads/",
    chunkSize: 8 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    metadata: { filename: file.name, title: file.name.replace(/\.[^.]+$/, "") },
    headers: { "X-CSRF-Token": CSRF },
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onAfterResponse(req, res) {
      const id = res.getHeader("Onair-Asset-Id");
      if (id && !assetId) { assetId = id; item.dataset.asset = id; showNew(id); }
    },
    onProgress(sent, total) {
      bar.value = total ? (100 * sent) / total : 0;
      state.textContent = `${Math.round(bar.value)}%`;
    },
    onSuccess() {
      bar.value = 100; state.textContent = "uploaded"; item.dataset.done = "1";
      if (assetId) showNew(assetId);
    },
    onError(err) { state.textContent = `failed: ${err.message}`; item.classList.add("error"); },
  });
  // Resume an interrupted upload of the same file (same fingerprint) instead of starting again.
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  });
}

function setupDrop() {
  const zone = $("#dropzone"), input = $("#files");
  if (!zone) return;
  const take = (files) => { for (const f of files) uploadFile(f); };
  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault(); zone.classList.remove("over");
    take(ev.dataTransfer.files);
  });
  $("#url-import").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const a = await api("POST", "/api/v1/assets", { source_url: f.source_url.value, title: f.title.value });
      flash(`Importing ${a.title || a.id}`, true);
      f.reset();
      showNew(a.id);
    } catch (e) { flash(e.message, false); }
  });
}

export function library() {
  if (PERMS.has("assets:write")) setupDrop();
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = ev.target;
    filters = { q: f.q.value.trim(), status: f.status.value, tag: f.tag.value.trim(), show: f.show.value.trim(),
                visibility: f.visibility.value };
    loadPage(false).catch((e) => flash(e.message, false));
  });
  $("#more").addEventListener("click", () => loadPage(true).catch((e) => flash(e.message, false)));
  loadPage(false).catch((e) => flash(e.message, false));
  follow();
}
