// Studio dashboard: polls with live bars (SSE), chat moderation (WebSocket), asset progress, embed snippets.
// All user text goes through textContent, never innerHTML.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = meta ? meta.getAttribute("content") : "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET" && CSRF) opts.headers["X-CSRF-Token"] = CSRF;  // the session's token (see base.html)
    if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    var resp = await fetch(path, opts);
    if (resp.status === 204) return null;
    var data = await resp.json();
    if (!resp.ok) throw new Error(data.detail || data.title || resp.status);
    return data;
  }

  // --- assets -----------------------------------------------------------------------------------
  document.addEventListener("click", function (ev) {
    if (!ev.target.classList.contains("copy")) return;
    var input = ev.target.parentNode.querySelector(".snippet");
    input.select();
    if (navigator.clipboard) navigator.clipboard.writeText(input.value).catch(function () {});
    ev.target.textContent = "Copied";
  });

  async function refreshAssets() {
    try {
      var data = await api("GET", "/studio/api/assets");
      data.assets.forEach(function (a) {
        var row = document.querySelector('tr[data-asset="' + CSS.escape(a.id) + '"]');
        if (!row) return;
        row.querySelector(".status").textContent = a.status;
        row.querySelector("progress").value = a.progress;
        row.querySelector(".pct").textContent = Math.round(a.progress) + "%";
      });
    } catch (e) { /* next round */ }
  }
  if (document.getElementById("assets")) setInterval(refreshAssets, 3000);

  // --- polls ------------------------------------------------------------------------------------
  var streams = {};

  function drawResults(card, res) {
    var max = Math.max(1, res.total);
    card.querySelector(".total").textContent = res.total + " votes";
    card.querySelector(".state").textContent = res.status;
    card.setAttribute("data-status", res.status);
    res.options.forEach(function (o) {
      var row = card.querySelector('.option[data-option="' + o.id + '"]');
      if (!row) return;
      var bar = row.querySelector(".bar");
      bar.style.width = (100 * o.votes / max) + "%";
      bar.setAttribute("data-votes", String(o.votes));
      row.querySelector(".count").textContent = String(o.votes);
    });
  }

  function pollCard(p) {
    var card = el("div", { "class": "poll", "data-poll": p.id, "data-status": p.status });
    var head = el("div");
    head.appendChild(el("strong", {}, p.question));
    head.appendChild(document.createTextNode(" "));
    head.appendChild(el("span", { "class": "state" }, p.status));
    head.appendChild(document.createTextNode(" · "));
    head.appendChild(el("span", { "class": "total" }, "0 votes"));
    card.appendChild(head);
    p.options.forEach(function (o) {
      var row = el("div", { "class": "option", "data-option": String(o.id) });
      row.appendChild(el("span", { "class": "label" }, o.label));
      var track = el("div", { "class": "track" });
      track.appendChild(el("div", { "class": "bar", "data-votes": "0" }));
      row.appendChild(track);
      row.appendChild(el("span", { "class": "count" }, "0"));
      card.appendChild(row);
    });
    var actions = el("div", { "class": "actions" });
    ["open", "close", "reset"].forEach(function (action) {
      var b = el("button", { type: "button", "data-action": action }, action[0].toUpperCase() + action.slice(1));
      b.addEventListener("click", async function () {
        try { await api("POST", "/api/v1/polls/" + encodeURIComponent(p.id) + "/" + action); }
        catch (e) { alert(e.message); }
      });
      actions.appendChild(b);
    });
    var csv = el("a", { href: "/api/v1/polls/" + encodeURIComponent(p.id) + "/export.csv" }, "Export CSV");
    actions.appendChild(csv);
    card.appendChild(actions);
    watchPoll(p.id, card);
    return card;
  }

  function watchPoll(id, card) {
    if (streams[id]) streams[id].close();
    var es = new EventSource("/api/v1/polls/" + encodeURIComponent(id) + "/events");
    es.addEventListener("results", function (ev) { drawResults(card, JSON.parse(ev.data)); });
    streams[id] = es;  // EventSource reconnects on its own (retry: 2000)
  }

  async function loadPolls() {
    var data = await api("GET", "/api/v1/polls");
    var list = document.getElementById("poll-list");
    Object.keys(streams).forEach(function (k) { streams[k].close(); delete streams[k]; });
    list.textContent = "";
    data.polls.forEach(function (p) { list.appendChild(pollCard(p)); });
  }

  if (document.getElementById("new-poll")) document.getElementById("new-poll").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    var form = ev.target;
    var options = form.options.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
    try {
      await api("POST", "/api/v1/polls", { question: form.question.value, options: options });
      form.reset();
      document.getElementById("poll-error").textContent = "";
      await loadPolls();
    } catch (e) { document.getElementById("poll-error").textContent = e.message; }
  });

  // --- chat moderation ---------------------------------------------------------------------------
  var room = null, socket = null;

  function messageItem(m, pending) {
    var li = el("li", { "data-message": String(m.id) });
    li.appendChild(el("span", { "class": "nick" }, m.nickname));
    li.appendChild(el("span", { "class": "text" }, m.text));
    if (pending) {
      var ok = el("button", { type: "button", "class": "approve" }, "Approve");
      ok.addEventListener("click", function () { moderate("POST", "/messages/" + m.id + "/approve"); });
      li.appendChild(ok);
    }
    var del = el("button", { type: "button", "class": "delete" }, pending ? "Reject" : "Delete");
    del.addEventListener("click", function () { moderate("DELETE", "/messages/" + m.id); });
    li.appendChild(del);
    var ban = el("button", { type: "button", "class": "ban" }, "Ban 1 h");
    ban.addEventListener("click", function () { moderate("POST", "/bans", { message_id: m.id, minutes: 60 }); });
    li.appendChild(ban);
    return li;
  }

  async function moderate(method, suffix, body) {
    try { await api(method, "/api/v1/chat/" + encodeURIComponent(room) + suffix, body); await loadRoom(); }
    catch (e) { alert(e.message); }
  }

  async function loadRoom() {
    var r = await api("GET", "/api/v1/chat/" + encodeURIComponent(room));
    var box = document.getElementById("room-settings");
    box.hidden = false;
    box.querySelector("[name=slow_mode_seconds]").value = r.slow_mode_seconds;
    box.querySelector("[name=paused]").checked = r.paused;
    box.querySelector("[name=premoderation]").checked = r.premoderation;
    box.querySelector("[name=words]").value = r.words.join(",");
    var pending = document.getElementById("pending");
    pending.textContent = "";
    r.pending.forEach(function (m) { pending.appendChild(messageItem(m, true)); });
  }

  if (document.getElementById("chat")) document.getElementById("save-room").addEventListener("click", async function () {
    var box = document.getElementById("room-settings");
    await moderate("PATCH", "", {
      slow_mode_seconds: parseInt(box.querySelector("[name=slow_mode_seconds]").value || "0", 10),
      paused: box.querySelector("[name=paused]").checked,
      premoderation: box.querySelector("[name=premoderation]").checked,
      words: box.querySelector("[name=words]").value.split(",").map(function (w) { return w.trim(); }).filter(Boolean)
    });
  });

  function connect(cursor) {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var url = proto + location.host + "/api/v1/chat/" + encodeURIComponent(room) + "/ws" +
      (cursor ? "?after=" + encodeURIComponent(cursor) : "");
    var ws = new WebSocket(url), last = cursor, mine = room;
    socket = ws;
    ws.onmessage = function (ev) {
      var frame = JSON.parse(ev.data), list = document.getElementById("messages");
      if (frame.type === "messages") {
        frame.messages.forEach(function (m) { list.appendChild(messageItem(m, false)); });
        last = frame.cursor;
        list.setAttribute("data-cursor", last);
      } else if (frame.type === "deleted") {
        var gone = list.querySelector('[data-message="' + frame.id + '"]');
        if (gone) gone.remove();
      } else if (frame.type === "room" || frame.type === "pending") {
        loadRoom();
      }
    };
    ws.onclose = function () {  // resume from the cursor: no gaps, no duplicates
      if (socket === ws && mine === room) setTimeout(function () { connect(last); }, 1000);
    };
  }

  if (document.getElementById("chat")) document.getElementById("room-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    room = ev.target.room.value.trim();
    if (socket) { var old = socket; socket = null; old.close(); }
    document.getElementById("messages").textContent = "";
    await loadRoom();
    connect(null);
  });

  if (document.getElementById("polls")) loadPolls();
})();
