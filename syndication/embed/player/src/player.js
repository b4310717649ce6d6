// The onair embeddable player: native HLS where the browser has it (Safari, iOS), hls.js elsewhere. The full
// hls.js build, not the light one: onair carries audio as separate HLS renditions (one per language), and the
// light build has no alternate-audio support (it played those assets silently).
// Configuration comes from a JSON block the server renders (no inline script, so a strict CSP holds).
// Live channels (cfg.live) play the same way; the seek bar then spans the DVR window (video.seekable), a LIVE
// badge says whether we are at the live edge, and "Go live" jumps back to it.
// DASH (`?engine=dash`: what HbbTV terminals play, tried in a browser) goes through dash.js, a separate chunk
// (player-dash.*.js) fetched only then: the hls.js page does not carry its weight.
import Hls from "hls.js/dist/hls.mjs";

// The dash.js chunk sits next to this script; its hashed name is fixed at build time (build.mjs).
const SCRIPT_URL = (document.currentScript && document.currentScript.src) || location.href;
let dashChunk = null;

function loadDash() {
  if (!dashChunk) {
    dashChunk = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = new URL(__DASH_CHUNK__, SCRIPT_URL).href;
      script.onload = () => (window.onairDash ? resolve(window.onairDash) : reject(new Error("no dash.js")));
      script.onerror = () => reject(new Error("the dash.js chunk did not load"));
      document.head.appendChild(script);
    });
  }
  return dashChunk;
}

// A DASH audio track's name for the menu: its Label, else the language's own name ("Deutsch", not "de").
function trackName(track) {
  const label = (track.labels || []).find((l) => l && l.text);
  if (label) return label.text;
  const lang = track.lang;
  try {
    const name = lang && new Intl.DisplayNames([lang], { type: "language" }).of(lang);
    if (name && name !== lang) return name.charAt(0).toUpperCase() + name.slice(1);
  } catch (_e) { /* not a language tag Intl knows */ }
  return lang || "Audio";
}

const $ = (sel, root = document) => root.querySelector(sel);

function readConfig() {
  const node = document.getElementById("onair-config");
  return node ? JSON.parse(node.textContent) : null;
}

function fmt(seconds) {
  if (!isFinite(seconds) || seconds < 0) seconds = 0;
  const s = Math.floor(seconds % 60);
  const m = Math.floor(seconds / 60) % 60;
  const h = Math.floor(seconds / 3600);
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
}

function sessionId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Math.random().toString(36).slice(2) + Date.now().toString(36);
}

// --- analytics: beacons survive the page being closed ---------------------------------------------
function makeReporter(cfg, video) {
  const session = sessionId();
  let watched = 0;
  let last = null;
  const quartiles = new Set();
  const send = (event, extra) => {
    if (!cfg.events_url) return;
    const body = JSON.stringify(Object.assign({
      asset_id: cfg.asset_id, session, event, position: video.currentTime || 0,
      watched, referrer: document.referrer || "",
    }, extra || {}));
    const blob = new Blob([body], { type: "text/plain" });
    if (!(navigator.sendBeacon && navigator.sendBeacon(cfg.events_url, blob))) {
      fetch(cfg.events_url, { method: "POST", body, keepalive: true, headers: { "Content-Type": "text/plain" } })
        .catch(() => {});
    }
  };
  video.addEventListener("timeupdate", () => {
    const t = video.currentTime;
    // Count only continuous playback, not seeks.
    if (last !== null && !video.paused && t > last && t - last < 2) watched += t - last;
    last = t;
    const d = video.duration || cfg.duration;
    if (d > 0) {
      for (const q of [25, 50, 75]) {
        if (t / d >= q / 100 && !quartiles.has(q)) { quartiles.add(q); send("q" + q); }
      }
    }
  });
  video.addEventListener("seeking", () => { last = null; });
  video.addEventListener("play", () => send("play"));
  video.addEventListener("pause", () => { if (!video.ended) send("pause"); });
  video.addEventListener("ended", () => { quartiles.add(100); send("ended"); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") send("heartbeat");
  });
  return { send };
}

// --- storyboard thumbnails over the scrub bar (WebVTT with #xywh= fragments) ------------------------
function parseTime(text) {
  const parts = text.trim().split(":").map(Number);
  return parts.reduce((acc, v) => acc * 60 + v, 0);
}

async function loadStoryboard(url) {
  const base = new URL(url, location.href);  // tile URLs in the VTT are relative to the VTT itself
  const resp = await fetch(base);
  if (!resp.ok) return [];
  const text = await resp.text();
  const cues = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.split(/\r?\n/).filter(Boolean);
    const i = lines.findIndex((l) => l.includes("-->"));
    if (i < 0 || !lines[i + 1]) continue;
    const [a, b] = lines[i].split("-->");
    const target = new URL(lines[i + 1].trim(), base);
    const m = /#xywh=(\d+),(\d+),(\d+),(\d+)/.exec(target.hash);
    target.hash = "";
    cues.push({ start: parseTime(a), end: parseTime(b.trim().split(" ")[0]), src: target.href,
      xywh: m ? m.slice(1).map(Number) : null });
  }
  return cues;
}

// --- ?debug=1: how far behind real time the picture is, for support: from EXT-X-PROGRAM-DATE-TIME (hls.js), or
// what dash.js measures against the MPD's clock (availabilityStartTime + UTCTiming) ----------------------------
function debugOverlay(root, state) {
  const box = document.createElement("div");
  box.className = "op-debug";
  box.setAttribute("aria-hidden", "true");
  root.appendChild(box);
  setInterval(() => {
    const hls = state.hls;
    const dash = state.dash;
    const date = hls && hls.playingDate;
    let target = hls ? hls.targetLatency : null;
    state.latency = date ? (Date.now() - date.getTime()) / 1000 : null;
    if (dash && dash.isDynamic()) {
      const measured = dash.getCurrentLiveLatency();
      state.latency = isFinite(measured) && measured > 0 ? measured : null;
      target = dash.getTargetLiveDelay();
    }
    const parts = [state.engine + (state.lowLatency ? " LL" : ""),
      "latency " + (state.latency === null ? "?" : state.latency.toFixed(2) + " s")];
    if (target != null && isFinite(target)) parts.push("target " + target.toFixed(2) + " s");
    parts.push("rate " + state.video.playbackRate.toFixed(2));
    box.textContent = parts.join(" · ");
  }, 500);
}

// --- live: where the DVR window and the live edge are ---------------------------------------------------
const LIVE_SLACK = 4;  // seconds behind the edge that still count as live (playlist refreshes move the edge in steps)

function liveClock(video, state) {
  const range = () => {
    const r = video.seekable;
    return r && r.length ? { start: r.start(0), end: r.end(r.length - 1) } : null;
  };
  // hls.js knows its target distance from the end (liveSyncPosition); dash.js's seekable range ends at the live
  // edge by the MPD's clock, and it plays its target latency behind that; natively, three seconds short of the end.
  const edge = () => {
    if (state.hls && state.hls.liveSyncPosition != null) return state.hls.liveSyncPosition;
    if (state.dash && state.dash.isDynamic()) {
      const r = range();
      const target = state.dash.getTargetLiveDelay();
      if (r && isFinite(target)) return Math.max(r.start, r.end - target);
    }
    const r = range();
    return r ? Math.max(r.start, r.end - 3) : null;
  };
  const behind = () => {
    const e = edge();
    return e == null ? 0 : Math.max(0, e - video.currentTime);
  };
  return { range, edge, behind, atEdge: () => behind() < LIVE_SLACK };
}

// The slate: the channel says when its encoder is away (reconnecting) or the show is over; the player keeps the
// last picture and puts a banner over it instead of leaving viewers in front of a frozen frame.
const SLATE_TEXT = { reconnecting: "We'll be right back.", ended: "This live event has ended." };
const STATUS_POLL_MS = 3000;  // against the origin's 1 s cache: a CDN answers nearly all of these

function watchChannel(url, slate, state) {
  const text = slate.querySelector("p");
  const poll = async () => {
    try {
      const resp = await fetch(url, { cache: "no-store" });
      if (resp.ok) {
        const { status } = await resp.json();
        state.channelStatus = status;
        const message = SLATE_TEXT[status];
        slate.hidden = !message;
        if (message) text.textContent = message;
        if (status === "ended") return;  // the page reloads into its "ended" message on the next visit
      }
    } catch (_e) { /* offline for a moment: keep what we show */ }
    setTimeout(poll, STATUS_POLL_MS);
  };
  poll();
}

// --- the player ----------------------------------------------------------------------------------------
function setup(root, cfg) {
  const video = $("video", root);
  const playBtn = $(".op-play", root);
  const muteBtn = $(".op-mute", root);
  const ccBtn = $(".op-cc", root);
  const subsMenu = $(".op-subs", root);
  const audioMenu = $(".op-audio", root);
  const fsBtn = $(".op-fs", root);
  const seek = $(".op-seek", root);
  const badge = $(".op-badge", root);
  const goLiveBtn = $(".op-golive", root);
  const slate = $(".op-slate", root);
  const time = $(".op-time", root);
  const thumb = $(".op-thumb", root);
  const status = $(".op-status", root);
  const state = { hls: null, video, levels: 0, errors: [] };
  window.onairPlayer = state;
  const live = cfg.live ? liveClock(video, state) : null;
  state.live = live;

  const reporter = makeReporter(cfg, video);
  const duration = () => (isFinite(video.duration) && video.duration > 0 ? video.duration : cfg.duration || 0);
  const showError = (msg) => { status.textContent = msg; status.hidden = false; state.errors.push(msg); };

  if (cfg.loop) video.loop = true;
  if (cfg.autoplay) { video.muted = true; video.autoplay = true; }
  const start = cfg.start > 0 ? cfg.start : 0;

  // Engine: Apple's native HLS where it exists (Safari, iOS: AirPlay, power), hls.js wherever MSE works
  // (Chromium now also answers canPlayType "maybe", but hls.js gives us ABR capping and error recovery),
  // native HLS as the last resort. `?engine=native|hlsjs|dash` forces one (support and testing; dash.js plays
  // the DASH manifest where the page names one and the browser has Media Source Extensions).
  const nativeOk = !!video.canPlayType("application/vnd.apple.mpegurl");
  const apple = /Apple/.test(navigator.vendor || "");
  let engine = cfg.engine;
  if (engine === "native" && !nativeOk) engine = null;
  if (engine === "hlsjs" && !Hls.isSupported()) engine = null;
  if (engine === "dashjs" && !(cfg.dash && (window.MediaSource || window.ManagedMediaSource))) engine = null;
  if (!engine) engine = nativeOk && apple ? "native" : Hls.isSupported() ? "hlsjs" : nativeOk ? "native" : null;
  state.engine = engine;

  // Audio language menu: shown only when the asset has more than one audio track.
  const fillAudio = (names, current, choose) => {
    if (!audioMenu || names.length < 2) return;
    audioMenu.replaceChildren(...names.map((n, i) => new Option(n, String(i), false, i === current)));
    audioMenu.onchange = () => { choose(Number(audioMenu.value)); state.audioTrack = Number(audioMenu.value); };
    audioMenu.hidden = false;
  };
  if (engine === "native") {
    video.src = cfg.src;
    const native = video.audioTracks;  // Safari lists the HLS audio renditions here
    if (native) {
      native.addEventListener("addtrack", () => {
        const list = Array.from(native);
        fillAudio(list.map((t) => t.label || t.language || "Audio"), list.findIndex((t) => t.enabled),
          (i) => list.forEach((t, j) => { t.enabled = i === j; }));
      });
    }
    if (start) video.addEventListener("loadedmetadata", () => { video.currentTime = start; }, { once: true });
  } else if (engine === "hlsjs") {
    // A low-latency channel: hls.js follows the LL-HLS parts with blocking playlist reloads, holds back
    // PART-HOLD-BACK behind the edge and catches up at most 10 % faster when it drifts behind. A channel (or
    // stream) without parts plays as standard HLS with the same settings.
    // Subtitles come from the page's <track> elements (the asset's whole WebVTT files), the same for every
    // engine: hls.js's subtitle controllers stay out (they would add the HLS SUBTITLES renditions as a second
    // set of text tracks and take over the modes of ours, whose label and language match theirs).
    const low = !!cfg.low_latency;
    const hls = new Hls(Object.assign({ startPosition: start || -1, capLevelToPlayerSize: true,
      lowLatencyMode: low, subtitleTrackController: null, subtitleStreamController: null, timelineController: null },
      live ? { liveDurationInfinity: true } : {}, live && !low ? { liveSyncDurationCount: 3 } : {},
      low ? { maxLiveSyncPlaybackRate: 1.1, backBufferLength: 30 } : {}));
    state.hls = hls;
    state.lowLatency = low;
    hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => { state.levels = data.levels.length; });
    hls.on(Hls.Events.AUDIO_TRACKS_UPDATED, (_e, data) => {
      fillAudio(data.audioTracks.map((t) => t.name || t.lang || "Audio"), hls.audioTrack,
        (i) => { hls.audioTrack = i; });
    });
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      reporter.send("error", { detail: String(data.details || data.type) });
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR) hls.startLoad();
      else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else showError("This video cannot be played right now.");
    });
    hls.loadSource(cfg.src);
    hls.attachMedia(video);
  } else if (engine === "dashjs") {
    // A low-latency channel: dash.js's low-latency mode follows the chunked CMAF (availabilityTimeOffset) and its
    // live catch-up holds the ServiceDescription's target latency, at most 10 % faster or slower than real time.
    // A standard channel stays three segments behind the edge, as hls.js does. Subtitles: the page's <track>s,
    // as for hls.js (dash.js's own text tracks stay off so there is one set).
    const low = !!cfg.low_latency;
    state.lowLatency = low;
    loadDash().then(({ MediaPlayer }) => {
      const dash = MediaPlayer().create();
      state.dash = dash;
      dash.updateSettings({ streaming: Object.assign({ text: { defaultEnabled: false } },
        live ? { liveCatchup: { enabled: low, playbackRate: { min: -0.1, max: 0.1 } } } : {},
        live && !low ? { delay: { liveDelayFragmentCount: 3 } } : {}) });
      const events = MediaPlayer.events;
      const audioTracks = () => dash.getTracksFor("audio");
      dash.on(events.STREAM_INITIALIZED, () => {
        state.levels = dash.getRepresentationsByType("video").length;
        const tracks = audioTracks();
        const current = dash.getCurrentTrackFor("audio");
        fillAudio(tracks.map(trackName), Math.max(0, tracks.findIndex((t) => current && t.id === current.id)),
          (i) => dash.setCurrentTrack(audioTracks()[i]));
      });
      dash.on(events.ERROR, (e) => {
        const err = (e && e.error) || {};
        state.dashErrors = (state.dashErrors || []).concat([String(err.code) + " " + String(err.message || "")]);
        reporter.send("error", { detail: "dash-" + String(err.code || "error") });
        // A manifest that cannot be loaded or read, or a browser without MSE: nothing will play.
        if ([10, 11, 16, 24, 25].includes(err.code)) showError("This video cannot be played right now.");
      });
      dash.initialize(video, cfg.dash, !!cfg.autoplay, start || undefined);
    }).catch(() => showError("This video cannot be played right now."));
  } else {
    showError("This browser cannot play this video.");
  }
  if (cfg.debug) debugOverlay(root, state);
  video.addEventListener("error", () => {
    reporter.send("error", { detail: "media-error-" + (video.error ? video.error.code : 0) });
  });

  // Controls
  const togglePlay = () => (video.paused || video.ended ? video.play().catch(() => {}) : video.pause());
  const renderLive = () => {
    const r = live.range();
    const behind = live.behind();
    const edge = live.atEdge();
    time.textContent = edge ? "LIVE" : "-" + fmt(behind);
    badge.dataset.state = edge ? "live" : "behind";
    goLiveBtn.disabled = edge;
    if (r && r.end > r.start && document.activeElement !== seek) {
      seek.value = String(((video.currentTime - r.start) / (r.end - r.start)) * 1000);
    }
    seek.setAttribute("aria-valuetext", edge ? "live" : fmt(behind) + " behind live");
  };
  const render = () => {
    const d = duration();
    if (live) {
      playBtn.setAttribute("aria-label", video.paused ? "Play" : "Pause");
      playBtn.dataset.state = video.paused ? "paused" : "playing";
      muteBtn.setAttribute("aria-label", video.muted ? "Unmute" : "Mute");
      muteBtn.dataset.state = video.muted ? "muted" : "sound";
      renderLive();
      return;
    }
    playBtn.setAttribute("aria-label", video.paused ? "Play" : "Pause");
    playBtn.dataset.state = video.paused ? "paused" : "playing";
    muteBtn.setAttribute("aria-label", video.muted ? "Unmute" : "Mute");
    muteBtn.dataset.state = video.muted ? "muted" : "sound";
    time.textContent = fmt(video.currentTime) + " / " + fmt(d);
    if (d > 0 && document.activeElement !== seek) seek.value = String((video.currentTime / d) * 1000);
    seek.setAttribute("aria-valuetext", fmt(video.currentTime) + " of " + fmt(d));
  };
  ["play", "pause", "timeupdate", "durationchange", "volumechange", "ended"].forEach((e) =>
    video.addEventListener(e, render));
  render();

  playBtn.addEventListener("click", togglePlay);
  video.addEventListener("click", togglePlay);
  muteBtn.addEventListener("click", () => { video.muted = !video.muted; });
  // Seeking: the whole file, or for live the DVR window the playlists still list.
  const seekTo = (t) => {
    const r = live ? live.range() : { start: 0, end: duration() };
    if (r) video.currentTime = Math.min(Math.max(t, r.start), live ? live.edge() : r.end);
  };
  const goLive = () => {
    const e = live.edge();
    if (state.dash && state.dash.isDynamic()) state.dash.seekToOriginalLive();  // its own live point and catch-up
    else if (e != null) video.currentTime = e;
    if (video.paused) video.play().catch(() => {});
  };
  seek.addEventListener("input", () => {
    const r = live ? live.range() : { start: 0, end: duration() };
    if (r) seekTo(r.start + (Number(seek.value) / 1000) * (r.end - r.start));
  });
  if (live) {
    goLiveBtn.addEventListener("click", goLive);
    state.goLive = goLive;
    if (cfg.status_url) watchChannel(cfg.status_url, slate, state);
  }
  fsBtn.addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen().catch(() => {});
  });
  // Subtitles: CC switches the chosen language on and off; the menu (two or more languages) picks it.
  const tracks = Array.from(video.querySelectorAll("track")).map((t) => t.track);
  let chosen = 0;
  // Cues go three lines up from the bottom, above the control bar (the default last line sits under it).
  const lift = (t) => { Array.from(t.cues || []).forEach((c) => { c.line = -3; }); };
  video.querySelectorAll("track").forEach((el) => el.addEventListener("load", () => lift(el.track)));
  const showSubtitle = (index) => {
    tracks.forEach((t, i) => { t.mode = i === index ? "showing" : "hidden"; lift(t); });
    if (index >= 0) chosen = index;
    state.subtitle = index;
    if (ccBtn) ccBtn.setAttribute("aria-pressed", String(index >= 0));
    if (subsMenu) subsMenu.value = String(index);
  };
  if (ccBtn) {
    ccBtn.addEventListener("click", () => showSubtitle(ccBtn.getAttribute("aria-pressed") === "true" ? -1 : chosen));
  }
  if (subsMenu) subsMenu.addEventListener("change", () => showSubtitle(Number(subsMenu.value)));

  // Keyboard: the player box takes focus; keys a viewer expects from big players.
  root.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const onSeekBar = e.target === seek;
    switch (e.key) {
      case " ": case "k":
        if (e.target.tagName === "BUTTON" && e.key === " ") return;  // the button handles its own activation
        togglePlay(); break;
      case "ArrowRight": if (onSeekBar) return; seekTo(video.currentTime + 5); break;
      case "ArrowLeft": if (onSeekBar) return; seekTo(video.currentTime - 5); break;
      case "m": video.muted = !video.muted; break;
      case "f": fsBtn.click(); break;
      case "c": if (ccBtn) ccBtn.click(); break;
      default: return;
    }
    e.preventDefault();
  });

  // Storyboard previews while hovering or scrubbing.
  if (cfg.storyboard) {
    let cues = [];
    loadStoryboard(cfg.storyboard).then((c) => { cues = c; }).catch(() => {});
    const preview = (fraction) => {
      const t = fraction * duration();
      const cue = cues.find((c) => t >= c.start && t < c.end);
      if (!cue) { thumb.hidden = true; return; }
      thumb.style.backgroundImage = 'url("' + cue.src.replace(/"/g, "%22") + '")';
      if (cue.xywh) {
        const [x, y, w, h] = cue.xywh;
        thumb.style.width = w + "px";
        thumb.style.height = h + "px";
        thumb.style.backgroundPosition = -x + "px " + -y + "px";
      }
      const rect = seek.getBoundingClientRect();
      const half = (cue.xywh ? cue.xywh[2] : 160) / 2;
      const left = Math.min(Math.max(fraction * rect.width - half, 0), Math.max(rect.width - 2 * half, 0));
      thumb.style.left = rect.left - root.getBoundingClientRect().left + left + "px";
      thumb.hidden = false;
    };
    seek.addEventListener("mousemove", (e) => {
      const rect = seek.getBoundingClientRect();
      preview(Math.min(Math.max((e.clientX - rect.left) / rect.width, 0), 1));
    });
    seek.addEventListener("input", () => preview(Number(seek.value) / 1000));
    ["mouseleave", "change", "blur"].forEach((e) => seek.addEventListener(e, () => { thumb.hidden = true; }));
  }
}

const cfg = readConfig();
const root = document.querySelector(".op-player");
if (cfg && root && cfg.src) setup(root, cfg);
