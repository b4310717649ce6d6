// Live channels: create, ingest URL and masked key to copy, preview, end, recordings.
import { $, api, el, flash, confirmAction, copyText, fmtDate, PERMS } from "./util.js";

function mask(key) { return key.slice(0, 4) + "•".repeat(Math.max(4, key.length - 4)); }

function card(ch, reload) {
  const id = encodeURIComponent(ch.id);
  const keyOut = el("code", { class: "key" }, mask(ch.stream_key));
  const box = el("article", { class: "channel card", "data-channel": ch.id, "aria-label": ch.title },
    el("h3", {}, ch.title, " ", el("span", { class: `badge s-${ch.status}` }, ch.status)),
    el("p", {}, "RTMP server ", el("code", {}, ch.ingest.rtmp.replace(/\/[^/]+$/, "/")), " ",
       el("button", { type: "button", onclick: (ev) => copyText(ch.ingest.rtmp, ev.target) }, "Copy RTMP URL")),
    el("p", {}, "Stream key ", keyOut, " ",
       el("button", { type: "button", onclick: (ev) => copyText(ch.stream_key, ev.target) }, "Copy key"), " ",
       el("button", { type: "button", onclick: (ev) => { keyOut.textContent = ch.stream_key; ev.target.remove(); } }, "Show key")),
    el("p", {}, "SRT ", el("code", {}, ch.ingest.srt.replace(/publish:.*/, "publish:…")), " ",
       el("button", { type: "button", onclick: (ev) => copyText(ch.ingest.srt, ev.target) }, "Copy SRT URL")),
    el("p", {}, el("a", { href: ch.playback.embed }, "Preview"), " · HLS ", el("code", {}, ch.playback.hls)));
  if (ch.recordings && ch.recordings.length) {
    box.append(el("p", {}, "Recordings: ", ...ch.recordings.map((r) => {
      const asset = typeof r === "string" ? r : (r.asset_id || r.id);
      return el("a", { href: `/studio/assets/${encodeURIComponent(asset)}` }, asset, " ");
    })));
  }
  if (ch.started_at) box.append(el("p", {}, `Started ${fmtDate(ch.started_at)}`, ch.ended_at ? `, ended ${fmtDate(ch.ended_at)}` : ""));
  const actions = el("div", { class: "actions" });
  if (PERMS.has("live:control")) actions.append(el("button", { type: "button", onclick: async () => {
    if (!await confirmAction(`End the live event on “${ch.title}” now?`, "End event")) return;
    try { await api("POST", `/api/v1/live/channels/${id}/end`); reload(); } catch (e) { flash(e.message, false); }
  } }, "End event"));
  actions.append(el("button", { type: "button", onclick: async () => {
    if (!await confirmAction("Rotate the stream key? The encoder must be given the new one.", "Rotate")) return;
    try { await api("POST", `/api/v1/live/channels/${id}/rotate-key`); reload(); } catch (e) { flash(e.message, false); }
  } }, "Rotate key"));
  actions.append(el("button", { type: "button", class: "danger", onclick: async () => {
    if (!await confirmAction(`Delete the channel “${ch.title}”?`, "Delete")) return;
    try { await api("DELETE", `/api/v1/live/channels/${id}`); reload(); } catch (e) { flash(e.message, false); }
  } }, "Delete"));
  box.append(actions);
  return box;
}

export function live() {
  const load = async () => {
    const data = await api("GET", "/api/v1/live/channels");
    const list = $("#channels");
    list.textContent = "";
    for (const ch of data.items) list.append(card(ch, load));
    if (!data.items.length) list.append(el("p", {}, "No channels yet."));
  };
  $("#new-channel").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await api("POST", "/api/v1/live/channels", { title: f.title.value, record: f.record.checked, visibility: f.visibility.value });
      f.reset(); flash("Channel created", true); await load();
    } catch (e) { flash(e.message, false); }
  });
  load().catch((e) => flash(e.message, false));
}
