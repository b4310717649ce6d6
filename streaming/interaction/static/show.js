// The show page: vote in the current poll (live bars after voting) and chat (WebSocket, long-poll fallback).
// Plain script, no dependencies: the page must be interactive fast on a slow phone.
(function () {
  "use strict";
  var main = document.getElementById("show");
  var cfg = JSON.parse(main.getAttribute("data-config"));
  var store = window.localStorage;
  var devicePromise = null;

  function $(id) { return document.getElementById(id); }

  function api(method, url, body) {
    var init = { method: method, headers: { "Accept": "application/json" }, credentials: "omit" };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    return fetch(url, init).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) { return { status: resp.status, data: data }; });
    });
  }

  // Minting a device id costs a small proof-of-work (streaming/interaction/proof.py): find a decimal nonce such
  // that SHA-256("<challenge>:<nonce>") starts with `bits` zero bits. A phone pays a fraction of a second once.
  function leadingZeroBits(bytes) {
    var n = 0;
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0) { n += 8; continue; }
      return n + Math.clz32(bytes[i]) - 24;
    }
    return n;
  }

  async function solve(challenge, bits) {
    var enc = new TextEncoder();
    for (var nonce = 0; ; nonce++) {
      var digest = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(challenge + ":" + nonce)));
      if (leadingZeroBits(digest) >= bits) return String(nonce);
    }
  }

  async function mint() {
    var ch = await api("GET", "/api/v1/devices/challenge");
    if (!ch.data.challenge) throw new Error(ch.data.detail || "no challenge");
    var nonce = await solve(ch.data.challenge, ch.data.bits);
    return api("POST", "/api/v1/devices", { challenge: ch.data.challenge, nonce: nonce });
  }

  // One server-issued device id per browser (a vote counts once per device).
  function device() {
    var known = store.getItem("onair.device");
    if (known) return Promise.resolve(known);
    if (!devicePromise) {
      devicePromise = mint().then(function (r) {
        if (!r.data.device_id) { devicePromise = null; throw new Error(r.data.detail || "no device id"); }
        store.setItem("onair.device", r.data.device_id);
        return r.data.device_id;
      });
    }
    return devicePromise;
  }

  // --- poll ------------------------------------------------------------------------------------------
  var poll = cfg.poll, events = null;
  var NOTES = { open: "Tap to vote", closed: "Voting has closed", draft: "Voting opens soon" };

  function voted() { return poll && store.getItem("onair.vote." + poll.id); }

  function note(status) {
    if (status === "draft" && poll.opens_at) {
      return "Voting opens at " + new Date(poll.opens_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
    return NOTES[status] || "";
  }

  // A new poll for the show (the page was opened before it existed): same markup as the server renders.
  function build(p) {
    if (events) { events.close(); events = null; }
    poll = p;
    $("poll-question").textContent = p.question;
    var list = $("poll-options");
    while (list.firstChild) list.removeChild(list.firstChild);
    p.options.forEach(function (o) {
      var li = document.createElement("li"), b = document.createElement("button");
      b.type = "button";
      b.setAttribute("data-option", o.id);
      b.disabled = p.status !== "open";
      b.innerHTML = '<span class="label"></span><span class="bar"><span class="fill"></span></span><span class="pct"></span>';
      b.firstChild.textContent = o.label;
      li.appendChild(b);
      list.appendChild(li);
    });
    $("poll").setAttribute("data-state", p.status);
    $("poll-note").textContent = note(p.status);
    follow();
  }

  function refresh() {
    api("GET", "/api/v1/shows/" + cfg.slug).then(function (r) {
      var p = r.data.poll;
      if (p && (!poll || p.id !== poll.id)) build(p);
    }, function () { /* next time */ });
  }

  function renderResults(res) {
    var section = $("poll");
    if (!section || !poll || res.poll_id !== poll.id) return;
    poll.status = res.status;
    section.setAttribute("data-state", res.status);
    var mine = voted();
    var showBars = !!mine || res.status === "closed";
    $("poll-note").textContent = mine && res.status === "open" ? "Thanks for voting" : note(res.status);
    if (res.status === "closed" && !poll.checkedAfterClose) { poll.checkedAfterClose = true; refresh(); }
    var buttons = section.querySelectorAll("button[data-option]");
    for (var i = 0; i < buttons.length; i++) {
      var b = buttons[i], id = b.getAttribute("data-option"), votes = 0;
      for (var j = 0; j < res.options.length; j++) if (String(res.options[j].id) === id) votes = res.options[j].votes;
      var pct = res.total ? Math.round(100 * votes / res.total) : 0;
      b.disabled = res.status !== "open" || (!!mine && !poll.allow_change);
      b.classList.toggle("mine", mine === id);
      b.querySelector(".fill").style.width = showBars ? pct + "%" : "0";
      b.querySelector(".pct").textContent = showBars ? pct + "%" : "";
    }
  }

  function follow() {
    if (!poll || events || !window.EventSource) return;
    events = new EventSource("/api/v1/polls/" + poll.id + "/events");  // reconnects by itself
    events.addEventListener("results", function (e) { renderResults(JSON.parse(e.data)); });
  }

  function vote(optionId) {
    device().then(function (dev) {
      return api("POST", "/api/v1/polls/" + poll.id + "/votes", { device_id: dev, option_id: Number(optionId) });
    }).then(function (r) {
      if (r.status === 200 || r.status === 201) store.setItem("onair.vote." + poll.id, String(r.data.option_id));
      else $("poll-note").textContent = r.data.detail || "Your vote could not be counted";
      return api("GET", "/api/v1/polls/" + poll.id + "/results");
    }).then(function (r) { if (r.data.options) renderResults(r.data); follow(); })
      .catch(function (err) { $("poll-note").textContent = "Your vote could not be sent: " + err.message; });
  }

  $("poll").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-option]");
    if (b && !b.disabled && poll) vote(b.getAttribute("data-option"));
  });
  if (poll) { $("poll-note").textContent = note(poll.status); follow(); }
  setInterval(refresh, 30000);  // a poll created after the page was opened; a closed poll asks at once

  // --- chat ------------------------------------------------------------------------------------------
  var log = $("chat-log"), cursor = "", wsFailures = 0, opened = false;
  var nick = $("chat-nick");
  nick.value = store.getItem("onair.nickname") || "";

  function row(m, held) {
    var li = document.createElement("li");
    li.setAttribute("data-id", m.id);
    if (held) li.className = "held";
    var b = document.createElement("b");
    b.textContent = m.nickname;
    li.appendChild(b);
    li.appendChild(document.createTextNode(m.text));
    return li;
  }

  function add(m, held) {
    var old = log.querySelector('li[data-id="' + m.id + '"]');
    var atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    if (old) log.replaceChild(row(m, held), old); else log.appendChild(row(m, held));
    while (log.children.length > 200) log.removeChild(log.firstChild);
    if (atEnd || held) log.scrollTop = log.scrollHeight;
  }

  function remove(id) {
    var old = log.querySelector('li[data-id="' + id + '"]');
    if (old) old.parentNode.removeChild(old);
  }

  function onFrame(f) {
    if (f.type === "messages") {
      for (var i = 0; i < f.messages.length; i++) add(f.messages[i], false);
      if (f.cursor) cursor = f.cursor;
    }
    if (f.type === "deleted") remove(f.id);
    if (f.deleted) for (var k = 0; k < f.deleted.length; k++) remove(f.deleted[k]);
  }

  function longPoll() {
    api("GET", "/api/v1/chat/" + cfg.room + "/messages?after=" + cursor + "&wait=25").then(function (r) {
      if (r.status === 200) { r.data.type = "messages"; onFrame(r.data); setTimeout(longPoll, 0); }
      else setTimeout(longPoll, 3000);
    }, function () { setTimeout(longPoll, 3000); });
  }

  function connect() {
    if (!window.WebSocket || wsFailures > 2) { longPoll(); return; }
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/api/v1/chat/" + cfg.room + "/ws?after=" + cursor);
    ws.onopen = function () { opened = true; wsFailures = 0; };
    ws.onmessage = function (e) { onFrame(JSON.parse(e.data)); };
    ws.onclose = function () {  // resume from the cursor: nothing missed, nothing repeated
      wsFailures += opened ? 0 : 1;
      opened = false;
      setTimeout(connect, 1000 + Math.random() * 2000);
    };
  }

  // Each message carries its own id (client_id): sending it again after a lost answer or a 503 (the server may
  // have stored it anyway) gives back the stored message instead of posting it twice. Same text, same id,
  // until it is sent.
  var outgoing = { text: null, id: null };
  function messageId(text) {
    if (outgoing.text !== text) {
      var bytes = crypto.getRandomValues(new Uint8Array(16)), hex = "";
      for (var i = 0; i < bytes.length; i++) hex += (bytes[i] + 256).toString(16).slice(1);
      outgoing = { text: text, id: hex };
    }
    return outgoing.id;
  }

  function postMessage(body, tries) {
    return api("POST", "/api/v1/chat/" + cfg.room + "/messages", body).then(function (r) {
      if (r.status !== 503 || tries <= 1) return r;
      return new Promise(function (ok) { setTimeout(ok, 2000); }).then(function () { return postMessage(body, tries - 1); });
    }, function (x) {
      if (tries <= 1) throw x;
      return new Promise(function (ok) { setTimeout(ok, 2000); }).then(function () { return postMessage(body, tries - 1); });
    });
  }

  $("chat-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("chat-text"), err = $("chat-error");
    store.setItem("onair.nickname", nick.value);
    device().then(function (dev) {
      return postMessage({ device_id: dev, nickname: nick.value, text: text.value, client_id: messageId(text.value) }, 3);
    }).then(function (r) {
      if (r.status !== 201) { err.textContent = r.data.detail || "Not sent"; return; }
      outgoing = { text: null, id: null };
      err.textContent = "";
      text.value = "";
      if (r.data.status === "pending") add(r.data, true);  // only we see it until a moderator approves it
    }).catch(function (x) { err.textContent = "Not sent: " + x.message; });
  });

  connect();

  // --- pairing with the TV: the phone takes on the TV's device id (one vote per household) ----------
  var pairForm = $("pair-form");
  function paired(yes) {
    pairForm.classList.toggle("paired", yes);
    $("unpair").hidden = !yes;
    $("pair-state").textContent = yes ? "Paired with your TV: you vote and chat as your household."
                                      : "Watching on TV? Enter the code it shows:";
  }
  function pair(code) {
    return api("POST", "/api/v1/pairings/" + encodeURIComponent(code.replace(/\s+/g, "")) + "/claim", {})
      .then(function (r) {
        if (r.status !== 200) { $("chat-error").textContent = r.data.detail || "That code did not work"; return; }
        store.setItem("onair.device", r.data.device_id);
        store.setItem("onair.paired", r.data.code);  // the claimed code stands for the pairing
        if (r.data.nickname) {  // the household chats under one name, on the TV and on the phone
          nick.value = r.data.nickname;
          store.setItem("onair.nickname", r.data.nickname);
        }
        devicePromise = null;
        paired(true);
      });
  }
  function forget(note) {
    store.removeItem("onair.device");  // a fresh device id of our own on the next vote or message
    store.removeItem("onair.paired");
    devicePromise = null;
    paired(false);
    main.setAttribute("data-paired", "0");
    if (note) $("pair-state").textContent = note;
  }
  pairForm.addEventListener("submit", function (e) { e.preventDefault(); pair($("pair-code").value); });
  $("unpair").addEventListener("click", function () {
    var code = store.getItem("onair.paired");
    if (code && code !== "1") api("POST", "/api/v1/pairings/" + encodeURIComponent(code) + "/unpair", {});
    forget("");
  });
  // the TV may unpair its phones: ask now and then whether this pairing still stands
  function stillPaired() {
    var code = store.getItem("onair.paired");
    if (!code || code === "1") return;
    api("GET", "/api/v1/pairings/" + encodeURIComponent(code)).then(function (r) {
      if (r.status === 200 && !r.data.paired && store.getItem("onair.paired") === code) {
        forget("Your TV unpaired this phone. Enter a new code to pair again:");
      }
    }, function () { /* offline: ask again later */ });
  }
  paired(!!store.getItem("onair.paired"));
  stillPaired();
  setInterval(stillPaired, 5000);
  var fromQr = new URLSearchParams(location.search).get("pair");
  if (fromQr) {
    history.replaceState(null, "", location.pathname + location.search.replace(/[?&]pair=[^&]*/, "").replace(/^&/, "?"));
    pair(fromQr).then(function () { main.setAttribute("data-paired", store.getItem("onair.paired") ? "1" : "0"); });
  }

  // --- embedded in a live blog: tell the parent page our height -----------------------------------
  if (document.body.classList.contains("embedded") && window.parent !== window && window.ResizeObserver) {
    new ResizeObserver(function () {
      window.parent.postMessage({ type: "onair:height", slug: cfg.slug, height: document.documentElement.scrollHeight }, "*");
    }).observe(document.body);
  }
  if (window.performance && performance.mark) performance.mark("show-ready");  // read by bench/bench_show_page.py
  main.setAttribute("data-ready", "1");
})();
