// Chat moderation: the room's settings, the pre-moderation queue and the live list over a WebSocket that
// resumes from its cursor.
import { $, api, el, flash } from "./util.js";

let room = null, socket = null;

function messageItem(m, pending) {
  const li = el("li", { "data-message": String(m.id) },
    el("span", { class: "nick" }, m.nickname), " ", el("span", { class: "text" }, m.text), " ");
  if (pending) li.append(el("button", { type: "button", class: "approve", onclick: () => moderate("POST", `/messages/${m.id}/approve`) }, "Approve"));
  li.append(el("button", { type: "button", class: "delete", onclick: () => moderate("DELETE", `/messages/${m.id}`) }, pending ? "Reject" : "Delete"));
  li.append(el("button", { type: "button", class: "ban", onclick: () => moderate("POST", "/bans", { message_id: m.id, minutes: 60 }) }, "Ban 1 h"));
  return li;
}

async function moderate(method, suffix, body) {
  try { await api(method, `/api/v1/chat/${encodeURIComponent(room)}${suffix}`, body); await loadRoom(); }
  catch (e) { flash(e.message, false); }
}

async function loadRoom() {
  const r = await api("GET", `/api/v1/chat/${encodeURIComponent(room)}`);
  const box = $("#room-settings");
  box.hidden = false;
  box.querySelector("[name=slow_mode_seconds]").value = r.slow_mode_seconds;
  box.querySelector("[name=paused]").checked = r.paused;
  box.querySelector("[name=premoderation]").checked = r.premoderation;
  box.querySelector("[name=words]").value = r.words.join(",");
  const pending = $("#pending");
  pending.textContent = "";
  for (const m of r.pending) pending.append(messageItem(m, true));
}

function connect(cursor) {
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const url = `${proto}${location.host}/api/v1/chat/${encodeURIComponent(room)}/ws${cursor ? `?after=${encodeURIComponent(cursor)}` : ""}`;
  const ws = new WebSocket(url), mine = room;
  let last = cursor;
  socket = ws;
  ws.onmessage = (ev) => {
    const frame = JSON.parse(ev.data), list = $("#messages");
    if (frame.type === "messages") {
      for (const m of frame.messages) list.append(messageItem(m, false));
      last = frame.cursor;
      list.dataset.cursor = last;
    } else if (frame.type === "deleted") {
      const gone = list.querySelector(`[data-message="${frame.id}"]`);
      if (gone) gone.remove();
    } else if (frame.type === "room" || frame.type === "pending") {
      loadRoom();
    }
  };
  ws.onclose = () => { if (socket === ws && mine === room) setTimeout(() => connect(last), 1000); };
}

export function chat() {
  $("#save-room").addEventListener("click", async () => {
    const box = $("#room-settings");
    await moderate("PATCH", "", {
      slow_mode_seconds: parseInt(box.querySelector("[name=slow_mode_seconds]").value || "0", 10),
      paused: box.querySelector("[name=paused]").checked,
      premoderation: box.querySelector("[name=premoderation]").checked,
      words: box.querySelector("[name=words]").value.split(",").map((w) => w.trim()).filter(Boolean),
    });
  });
  $("#room-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    room = ev.target.room.value.trim();
    if (socket) { const old = socket; socket = null; old.close(); }
    $("#messages").textContent = "";
    try { await loadRoom(); connect(null); } catch (e) { flash(e.message, false); }
  });
}
