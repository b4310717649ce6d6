// One asset: preview, details, visibility and rights (with a plain-language summary), embed code, replace the
// source, stats, retry and delete.
import { $, api, el, flash, confirmAction, copyText, csv, fmtDate, fmtDuration, BASE, CSRF, PERMS } from "./util.js";
import { perDayChart, barChart } from "./charts.js";
import { countryPicker, countryName } from "./countries.js";

const BUSY = new Set(["uploading", "queued", "probing", "transcoding", "packaging"]);

function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function fromLocalInput(value) { return value ? new Date(value).toISOString() : null; }

export function rightsSummary(f) {
  const allow = csv(f.geo_allow.value.toUpperCase()), deny = csv(f.geo_deny.value.toUpperCase());
  const when = (v) => fmtDate(new Date(v).toISOString());
  const places = (codes) => {
    const list = codes.map(countryName);
    return list.length > 1 ? `${list.slice(0, -1).join(", ")} and ${list[list.length - 1]}` : list.join("");
  };
  let text = f.visibility.value === "private" ? "Private: visible only in the studio" :
    `Visible ${allow.length ? "in " + places(allow) : "everywhere"}`;
  if (deny.length) text += ` except in ${places(deny)}`;
  if (f.available_from.value) text += ` from ${when(f.available_from.value)}`;
  if (f.available_until.value) text += ` until ${when(f.available_until.value)}`;
  else if (f.visibility.value !== "private") text += ", with no end date";
  if (f.visibility.value === "unlisted") text += " (unlisted: only with the link)";
  return text + ".";
}

function snippet(a) {
  const src = `${BASE}/embed/${encodeURIComponent(a.id)}`;
  return `<iframe src="${src}" width="640" height="360" frameborder="0" allow="autoplay; fullscreen" allowfullscreen title="${(a.title || a.id).replace(/"/g, "&quot;")}"></iframe>`;
}

function draw(a) {
  document.title = `${a.title || a.id} · onair studio`;
  $("main h1").textContent = a.title || a.id;
  const line = $("#asset-status");
  line.textContent = "";
  line.append(el("span", { class: `badge s-${a.status}` }, a.status));
  if (BUSY.has(a.status)) line.append(` ${Math.round(a.progress)}%`);
  if (a.duration) line.append(` · ${fmtDuration(a.duration)}`);
  line.append(` · added ${fmtDate(a.created_at)}`);
  if (a.status === "failed") line.append(el("span", { class: "reason", id: "failure" }, ` Failed: ${a.error || "unknown reason"}`));
  $("#retry").hidden = a.status !== "failed" || !PERMS.has("assets:write");
  const ready = a.status === "ready";
  $("#embed-box").hidden = !ready;
  const preview = $("#preview");
  // a replaced source went live: the preview loads the new renditions
  if (ready && preview.dataset.generation !== String(a.media_generation)) {
    preview.dataset.generation = String(a.media_generation);
    preview.textContent = "";
    preview.append(el("iframe", { src: `/embed/${encodeURIComponent(a.id)}`, title: `Preview of ${a.title || a.id}`,
                                  allow: "autoplay; fullscreen", allowfullscreen: true }));
  } else if (!ready) {
    preview.textContent = a.status === "failed" ? "No preview: processing failed." : "The preview appears when processing is done.";
  }
  if (ready) {
    $("#snippet").value = snippet(a);
    $("#watch-link").href = `${BASE}/watch/${encodeURIComponent(a.id)}`;
    $("#oembed-link").href = `${BASE}/oembed?url=${encodeURIComponent(`${BASE}/watch/${a.id}`)}`;
  }
}

function drawRenditions(a) {
  const body = $("#renditions"), list = a.renditions || [];
  $("#renditions-box").hidden = !list.length;
  body.textContent = "";
  for (const r of list) {
    const kbps = r.bandwidth || r.bitrate ? `${Math.round((r.bandwidth || r.bitrate) / 1000)} kbit/s` : "–";
    body.append(el("tr", {}, el("td", {}, r.width && r.height ? `${r.width}×${r.height}` : (r.name || "–")),
                   el("td", {}, kbps), el("td", {}, r.codecs || r.codec || "–")));
  }
  const images = $("#images");
  images.textContent = "";
  if (a.images && a.images.poster) {
    images.append("Images: ", el("a", { href: `${BASE}/media/${a.id}/${a.images.poster}` }, "poster"));
    if (a.images.storyboard) images.append(" · ", el("a", { href: `${BASE}/media/${a.id}/${a.images.storyboard}` }, "storyboard"));
  }
}

const pickers = {};

function drawPoster(a) {
  $("#poster-box").hidden = a.status !== "ready" || !PERMS.has("assets:write");
  if (a.images && a.images.poster) $("#poster-img").src = `${BASE}/media/${a.id}/${a.images.poster}`;
}

function setupPoster(id) {
  const form = $("#poster-form"), input = form.poster, error = $("#poster-error");
  const fail = (text) => { error.textContent = text; input.setAttribute("aria-invalid", "true"); };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = input.files[0];
    error.textContent = ""; input.removeAttribute("aria-invalid");
    if (!file) return;
    const resp = await fetch(`/api/v1/assets/${encodeURIComponent(id)}/poster`, {
      method: "POST", credentials: "same-origin", body: file,
      headers: { "X-CSRF-Token": CSRF, "Content-Type": file.type || "application/octet-stream" } });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) { fail(data.detail || `The poster was refused (HTTP ${resp.status})`); return; }
    $("#poster-img").src = data.url;
    form.reset();
    flash("Poster replaced", true);
  });
}

const REPLACING = new Set(["queued", "probing", "transcoding", "packaging"]);

function replacing(a) { return Boolean(a.replacement && REPLACING.has(a.replacement.status)); }

function drawReplacement(a) {
  $("#source-box").hidden = !["ready", "failed"].includes(a.status) || !PERMS.has("assets:write");
  const r = a.replacement, line = $("#source-status");
  $("#source-form").querySelector("button").disabled = replacing(a);
  if (!r || line.dataset.uploading) return;
  line.textContent = "";
  if (REPLACING.has(r.status)) {
    line.append(el("span", { class: `badge s-${r.status}` }, r.status), ` ${Math.round(r.progress)}% · the current video plays until the new one is ready`);
  } else if (r.status === "failed") {
    line.append(el("span", { class: "reason", id: "replacement-failure" }, `The replacement failed: ${r.error || "unknown reason"}. The previous video is still playing.`));
  } else if (r.status === "ready") {
    line.append("The new source is live at the same links.");
  }
}

function setupReplace(id, reload) {
  const form = $("#source-form"), input = form.file, line = $("#source-status");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = input.files[0];
    if (!file) return;
    if (!await confirmAction(`Replace this video with “${file.name}”? Viewers get the new version at the same links once it is processed.`, "Replace source")) return;
    const body = new FormData();
    body.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/assets/${encodeURIComponent(id)}/source`);
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    line.dataset.uploading = "1";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) line.textContent = `Uploading ${Math.round((100 * e.loaded) / e.total)}%`;
    });
    xhr.addEventListener("loadend", () => {
      delete line.dataset.uploading;
      let data = {};
      try { data = JSON.parse(xhr.responseText || "{}"); } catch (e) { /* not JSON */ }
      if (xhr.status !== 202) { line.textContent = data.detail || `The file was refused (HTTP ${xhr.status || "network error"})`; return; }
      form.reset();
      flash("New source uploaded: processing", true);
      reload();
    });
    xhr.send(body);
  });
}

function fillForm(a) {
  const f = $("#meta");
  f.title.value = a.title || ""; f.description.value = a.description || "";
  f.tags.value = (a.tags || []).join(", "); f.show.value = a.show || ""; f.credit.value = a.credit || "";
  f.visibility.value = a.visibility;
  f.available_from.value = toLocalInput(a.rights.available_from);
  f.available_until.value = toLocalInput(a.rights.available_until);
  pickers.geo_allow.set(a.rights.geo_allow); pickers.geo_deny.set(a.rights.geo_deny);
  $("#rights-summary").textContent = rightsSummary(f);
}

async function loadStats(id) {
  if (!PERMS.has("stats:read")) { $("#stats").closest("section").hidden = true; return; }
  try {
    const s = await api("GET", `/api/v1/assets/${encodeURIComponent(id)}/stats`);
    const dl = $("#stats");
    dl.textContent = "";
    const put = (k, v) => dl.append(el("dt", {}, k), el("dd", {}, v));
    put("Plays", s.plays);
    put("Watch time", fmtDuration(s.total_watch_seconds));
    put("Average watch", fmtDuration(s.average_watch_seconds));
    put("Completion", s.plays ? `${Math.round((100 * s.completions) / s.plays)}% (${s.completions})` : "–");
    const days = (s.days || []).map((d) => ({ ...d, watch_minutes: Math.round(d.watch_seconds / 6) / 10 }));
    perDayChart($("#chart-plays"), { title: "Plays and completions per day", days,
      series: [{ key: "plays", label: "Plays" }, { key: "completions", label: "Completions" }] });
    perDayChart($("#chart-watch"), { title: "Watch time per day (minutes)", days,
      series: [{ key: "watch_minutes", label: "Minutes watched" }] });
    const q = s.quartiles || {};
    barChart($("#chart-completion"), { title: "How far viewers got", unit: "viewers",
      bars: [{ label: "started", value: s.plays }, ...["25", "50", "75", "100"].map((k) => ({ label: `${k}%`, value: q[k] || 0 }))] });
    barChart($("#chart-referrers"), { title: "Where plays came from", unit: "plays",
      bars: (s.referrers || []).slice(0, 8).map((r) => ({ label: r.domain || "direct", value: r.plays })) });
  } catch (e) { /* stats are optional */ }
}

export function assetPage() {
  const id = $("#asset").dataset.asset, f = $("#meta");
  let current = null;
  const load = async () => {
    const a = await api("GET", `/api/v1/assets/${encodeURIComponent(id)}`);
    const first = current === null;
    current = a;
    draw(a);
    drawRenditions(a);
    drawPoster(a);
    drawReplacement(a);
    if (first) fillForm(a);
    if (BUSY.has(a.status) || replacing(a)) setTimeout(() => load().catch(() => {}), 2000);
  };
  const summarise = () => { $("#rights-summary").textContent = rightsSummary(f); };
  for (const box of document.querySelectorAll(".countries")) pickers[box.dataset.field] = countryPicker(box, summarise);
  setupPoster(id);
  setupReplace(id, () => load().catch(() => {}));
  f.addEventListener("input", summarise);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {
      title: f.title.value, description: f.description.value, tags: csv(f.tags.value),
      show: f.show.value || null, credit: f.credit.value || null, visibility: f.visibility.value,
      available_from: fromLocalInput(f.available_from.value), available_until: fromLocalInput(f.available_until.value),
      geo_allow: csv(f.geo_allow.value.toUpperCase()), geo_deny: csv(f.geo_deny.value.toUpperCase()),
    };
    try { current = await api("PATCH", `/api/v1/assets/${encodeURIComponent(id)}`, body); draw(current); flash("Saved", true); }
    catch (e) { flash(e.message, false); }
  });
  $("#copy-snippet").addEventListener("click", (ev) => copyText($("#snippet").value, ev.target));
  $("#retry").addEventListener("click", async () => {
    try { await api("POST", `/api/v1/assets/${encodeURIComponent(id)}/retry`); flash("Processing again", true); await load(); }
    catch (e) { flash(e.message, false); }
  });
  $("#delete").addEventListener("click", async () => {
    if (!await confirmAction(`Delete “${current ? current.title || id : id}” and all its files? This cannot be undone.`, "Delete")) return;
    try { await api("DELETE", `/api/v1/assets/${encodeURIComponent(id)}`); location.assign("/studio/library"); }
    catch (e) { flash(e.message, false); }
  });
  if (!PERMS.has("assets:write")) { f.querySelector("button[type=submit]").disabled = true; $("#delete").hidden = true; }
  load().catch((e) => flash(e.message, false));
  loadStats(id);
}
