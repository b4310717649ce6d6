/* onair red-button app. ES5 only (HbbTV 1.x browsers): no let/const, arrows, classes, Promise or fetch.
   Every request goes to the document's own origin: many TVs have no CORS. */
(function () {
  'use strict';

  var body = document.body;
  /* settings come as <meta name="onair:..."> (valid XHTML 1.0, unlike data-* attributes) */
  var meta = (function () {
    var out = { vod: [], embed: [], sub: [] }, els = document.getElementsByTagName('meta'), i, name;
    for (i = 0; i < els.length; i++) {
      name = els[i].getAttribute('name') || '';
      if (name.indexOf('onair:') !== 0) { continue; }
      name = name.substring(6);
      if (name === 'vod' || name === 'sub') { out[name].push(els[i].getAttribute('content')); } else if (name === 'embed') { out.embed.push(els[i].getAttribute('content')); } else { out[name] = els[i].getAttribute('content'); }
    }
    return out;
  }());
  /* per clip, its subtitle languages: "clip|language|names a terminal may report|label" */
  function subtitleLists(count, entries) {
    var lists = [], i, f;
    for (i = 0; i < count; i++) { lists.push([]); }
    for (i = 0; i < entries.length; i++) {
      f = entries[i].split('|');
      if (f.length >= 4 && lists[parseInt(f[0], 10)]) {
        lists[parseInt(f[0], 10)].push({ lang: f[1], codes: ' ' + f[2] + ' ', label: f.slice(3).join('|') });
      }
    }
    return lists;
  }
  var cfg = {
    slug: meta.slug,
    api: meta.api || '/api/v1',
    variant: meta.variant,
    pollId: meta.poll || '',
    room: meta.room || '',
    interval: parseInt(meta.interval, 10) || 2000,
    accent: meta.accent || '#ffd100',
    liveMpd: meta.livempd || 'dash/standard.mpd', /* LL-DASH only where the terminal is HbbTV 2.0.3+ (server's pick) */
    vod: meta.vod,
    embed: meta.embed,
    subs: subtitleLists(meta.vod.length, meta.sub)
  };
  if (meta.preview) { body.setAttribute('data-preview', meta.preview); }
  var KE = window.KeyEvent || {};
  var VK = {
    RED: KE.VK_RED || 403, GREEN: KE.VK_GREEN || 404, YELLOW: KE.VK_YELLOW || 405, BLUE: KE.VK_BLUE || 406,
    LEFT: KE.VK_LEFT || 37, UP: KE.VK_UP || 38, RIGHT: KE.VK_RIGHT || 39, DOWN: KE.VK_DOWN || 40,
    ENTER: KE.VK_ENTER || 13, BACK: KE.VK_BACK || 461
  };
  var MASK_RED = 0x1, MASK_YELLOW = 0x4, MASK_COLOURS = 0xF, MASK_NAV = 0x10;
  var SUBTITLE_COMPONENT = 2; /* AVComponent.COMPONENT_TYPE_SUBTITLE (OIPF DAE) */
  var PANELS = ['vote', 'chat', 'vod'];

  var st = {
    open: false, panel: 'vote', sel: 0, vodSel: 0, vod: null, banner: null, bannerSeen: {}, target: false,
    poll: null, pollTimer: null, resultsBusy: false, resultsInterval: cfg.interval,
    chatOn: false, chatBusy: false, cursor: '', device: null, openedAt: 0,
    pair: null, pairBusy: false, votedElsewhere: false, checked: '', subs: [], subIdx: 0
  };

  function $(id) { return document.getElementById(id); }
  function now() { return new Date().getTime(); }
  function enc(s) { return encodeURIComponent(String(s)); }

  function hasClass(el, c) { return (' ' + el.className + ' ').indexOf(' ' + c + ' ') >= 0; }
  function addClass(el, c) { if (el && !hasClass(el, c)) { el.className = (el.className ? el.className + ' ' : '') + c; } }
  function removeClass(el, c) {
    if (el) { el.className = (' ' + el.className + ' ').replace(' ' + c + ' ', ' ').replace(/^\s+|\s+$/g, ''); }
  }
  function show(el, yes) { if (yes) { removeClass(el, 'hidden'); } else { addClass(el, 'hidden'); } }
  /* user text (chat, poll labels) only ever enters the page as text nodes */
  function setText(el, text) {
    while (el.firstChild) { el.removeChild(el.firstChild); }
    el.appendChild(document.createTextNode(text === null || text === undefined ? '' : String(text)));
  }
  function make(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    if (text !== undefined) { el.appendChild(document.createTextNode(String(text))); }
    return el;
  }

  /* ---- JSON without assuming window.JSON (some 1.x engines lack it) ---- */
  function parse(text) {
    if (!text) { return null; }
    if (window.JSON && JSON.parse) { return JSON.parse(text); }
    return eval('(' + text + ')'); /* same-origin server JSON only */
  }
  function quote(s) {
    return '"' + String(s).replace(/[\\"\u0000-\u001f\u2028\u2029]/g, function (c) {
      return '\\u' + ('0000' + c.charCodeAt(0).toString(16)).slice(-4);
    }) + '"';
  }
  function stringify(o) {
    if (window.JSON && JSON.stringify) { return JSON.stringify(o); }
    var parts = [], k, v;
    for (k in o) {
      if (o.hasOwnProperty(k)) {
        v = o[k];
        parts.push(quote(k) + ':' + (v === null ? 'null' : (typeof v === 'number' || typeof v === 'boolean') ? String(v) : quote(v)));
      }
    }
    return '{' + parts.join(',') + '}';
  }

  function request(method, url, data, cb, timeoutMs) {
    var r = new XMLHttpRequest(), done = false, timer;
    function finish(status) {
      var parsed = null;
      if (done) { return; }
      done = true;
      clearTimeout(timer);
      try { parsed = parse(r.responseText); } catch (e) { parsed = null; }
      cb(status, parsed, r);
    }
    r.open(method, url, true);
    if (data !== null) { r.setRequestHeader('Content-Type', 'application/json'); }
    r.onreadystatechange = function () { if (r.readyState === 4) { finish(r.status); } };
    timer = setTimeout(function () { try { r.abort(); } catch (e) { /* ignore */ } finish(0); }, timeoutMs || 10000);
    r.send(data === null ? null : stringify(data));
  }

  /* ---- storage: the server-issued device id and "already voted" survive restarts of the app ---- */
  var store = {
    get: function (k) { try { return window.localStorage ? window.localStorage.getItem(k) : null; } catch (e) { return null; } },
    set: function (k, v) { try { if (window.localStorage) { window.localStorage.setItem(k, v); } } catch (e) { /* full or denied */ } }
  };

  /* where the terminal grants it, its own id goes along as a hint so the server can re-issue the same
     device after localStorage is wiped; the server-signed id stays the one we vote with */
  function terminalHint() {
    var c = $('oipfcfg'), id = null;
    try { id = (c.configuration && c.configuration.deviceId) || (c.localSystem && c.localSystem.deviceID) || null; } catch (e) { id = null; }
    return id ? { terminal_id: String(id) } : {};
  }

  /* minting costs a small proof-of-work (proof.js): fetch a challenge, solve it, post both */
  function withDevice(cb) {
    if (st.device) { cb(st.device); return; }
    st.device = store.get('onair.device');
    if (st.device && st.device.indexOf('d1.') === 0) { st.device = null; } /* pre-proof ids are refused */
    if (st.device) { cb(st.device); return; }
    request('GET', cfg.api + '/devices/challenge', null, function (status, ch) {
      if (status !== 200 || !ch || !ch.challenge) { cb(null); return; }
      onairProof.solve(ch.challenge, ch.bits, function (nonce) {
        var body = terminalHint();
        body.challenge = ch.challenge;
        body.nonce = nonce;
        request('POST', cfg.api + '/devices', body, function (status2, d) {
          if (status2 === 201 && d && d.device_id) {
            st.device = d.device_id;
            store.set('onair.device', st.device);
          }
          cb(st.device);
        });
      });
    });
  }

  /* ---- OIPF: application manager, keyset, broadcast video ---- */
  function ownerApp() {
    try { return $('appmgr').getOwnerApplication(document); } catch (e) { return null; }
  }
  function setKeyset(mask) {
    var a = ownerApp();
    try { a.privateData.keyset.setValue(mask); } catch (e) { /* desktop preview */ }
  }
  function bindBroadcast() {
    try { $('broadcast').bindToCurrentChannel(); } catch (e) { /* no tuner: preview */ }
  }
  function stopBroadcast() {
    try { $('broadcast').stop(); } catch (e) { /* ignore */ }
  }
  function idleKeyset() { setKeyset(st.banner ? (MASK_RED | MASK_NAV) : MASK_RED); }

  /* ---- overlay ---- */
  function openOverlay(panel) {
    st.open = true;
    st.openedAt = now();
    show($('prompt'), false);
    show($('banner'), false);
    show($('overlay'), true);
    setKeyset(MASK_RED | MASK_COLOURS | MASK_NAV);
    selectPanel(panel || st.panel);
    startChat();
  }
  function closeOverlay() {
    st.open = false;
    st.target = false;
    show($('overlay'), false);
    show($('target'), false);
    show($('prompt'), true);
    stopChat();
    renderBanner();
    idleKeyset();
  }
  function selectPanel(name) {
    var i;
    st.panel = name;
    st.target = false;
    show($('target'), false);
    for (i = 0; i < PANELS.length; i++) {
      show($('panel-' + PANELS[i]), PANELS[i] === name);
      if (PANELS[i] === name) { addClass($('tab-' + PANELS[i]), 'active'); } else { removeClass($('tab-' + PANELS[i]), 'active'); }
    }
    if (name === 'vote') { st.checked = ''; renderPoll(); fetchResults(); } /* ask again: the phone may have voted */
    if (name === 'chat') { pairPhone(); }
    if (name === 'vod') { renderVod(); }
  }

  /* ---- vote panel ---- */
  function votedKey() { return 'onair.voted.' + cfg.pollId; }
  function renderPoll() {
    var p = st.poll, list = $('poll-options'), status = $('poll-status'), i, o, li, bar, pct, voted = store.get(votedKey());
    if (!cfg.pollId) { setText(status, 'No vote at the moment.'); return; }
    if (!p) { setText(status, 'Loading\u2026'); return; }
    if (p.question) { setText($('poll-question'), p.question); }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    if (st.sel >= p.options.length) { st.sel = 0; }
    for (i = 0; i < p.options.length; i++) {
      o = p.options[i];
      pct = p.total > 0 ? Math.round(100 * o.votes / p.total) : 0;
      li = make('div', 'option' + (i === st.sel && p.status === 'open' ? ' selected' : '') + (String(o.id) === voted ? ' mine' : ''));
      li.appendChild(make('span', 'label', o.label));
      li.appendChild(make('span', 'pct', pct + '%'));
      bar = make('span', 'bar');
      bar.style.width = pct + '%';
      bar.style.backgroundColor = cfg.accent;
      li.appendChild(bar);
      list.appendChild(li);
    }
    if (p.status === 'closed') {
      setText(status, 'Voting has closed.');
    } else if (p.status !== 'open') {
      setText(status, 'Voting opens soon.');
    } else if (voted && st.votedElsewhere) {
      setText(status, 'You voted from your phone.');
    } else if (voted) {
      setText(status, 'Thanks for voting!');
    } else {
      setText(status, 'UP/DOWN to choose, OK to vote');
    }
    body.setAttribute('data-poll-status', p.status || '');
    if (st.open && st.openedAt && !body.getAttribute('data-ready')) {
      body.setAttribute('data-ready', String(now() - st.openedAt));
    }
  }
  function intervalHint(d, r) {
    var h = null, cc;
    if (d && (d.poll_interval_ms || d.interval_ms)) { h = d.poll_interval_ms || d.interval_ms; }
    try { if (h === null && r.getResponseHeader('X-Poll-Interval')) { h = 1000 * parseFloat(r.getResponseHeader('X-Poll-Interval')); } } catch (e) { /* header hidden */ }
    try {
      cc = r.getResponseHeader('Cache-Control') || '';
      if (h === null && /max-age=(\d+)/.test(cc)) { h = 1000 * parseInt(RegExp.$1, 10); }
    } catch (e2) { /* ignore */ }
    if (!h || isNaN(h)) { return cfg.interval; }
    return Math.max(1000, Math.min(30000, h));
  }
  function fetchResults() {
    if (!cfg.pollId || st.resultsBusy) { return; }
    st.resultsBusy = true;
    request('GET', cfg.api + '/polls/' + enc(cfg.pollId) + '/results', null, function (status, d, r) {
      st.resultsBusy = false;
      if (status === 200 && d && d.options) {
        st.poll = d;
        st.resultsInterval = intervalHint(d, r);
        checkHousehold();
      } else if (status === 404) {
        st.poll = { status: 'closed', total: 0, options: [] };
      }
      if (st.open && st.panel === 'vote') { renderPoll(); }
    });
  }
  /* once per poll: did this household's device vote already (from the paired phone)? */
  function checkHousehold() {
    var pollId = cfg.pollId;
    if (!pollId || !st.device || st.checked === pollId || store.get(votedKey())) { return; }
    st.checked = pollId;
    request('POST', cfg.api + '/polls/' + enc(pollId) + '/my-vote', { device_id: st.device }, function (status, d) {
      if (status === 200 && d && d.option_id !== null && d.option_id !== undefined && pollId === cfg.pollId) {
        store.set(votedKey(), String(d.option_id));
        st.votedElsewhere = true;
        if (st.open && st.panel === 'vote') { renderPoll(); }
      }
    });
  }
  function vote() {
    var p = st.poll, option;
    if (!p || p.status !== 'open' || !p.options.length || store.get(votedKey())) { return; }
    option = p.options[st.sel];
    setText($('poll-status'), 'Sending\u2026');
    withDevice(function (device) {
      if (!device) { setText($('poll-status'), 'Could not vote, please try again.'); return; }
      request('POST', cfg.api + '/polls/' + enc(cfg.pollId) + '/votes', { device_id: device, option_id: option.id }, function (status, d) {
        if (status === 200 || status === 201) {
          store.set(votedKey(), String(d && d.option_id !== undefined && d.option_id !== null ? d.option_id : option.id));
          /* a repeat: this household's device voted already, from the paired phone */
          if (d && d.first === false && !d.changed) { st.votedElsewhere = true; }
          fetchResults();
        } else if (status === 409) {
          p.status = 'closed';
        } else {
          if (status === 403) { st.device = null; store.set('onair.device', ''); } /* refused id: mint anew */
          setText($('poll-status'), 'Could not vote, please try again.');
          return;
        }
        renderPoll();
      });
    });
  }

  /* ---- pairing: a QR code and a short code hand this TV's device id to a phone (one household) ---- */
  function pairPhone() {
    if (st.pair && st.pair.until > now()) { return; }
    withDevice(function (device) {
      if (!device || st.pairBusy) { return; }
      st.pairBusy = true;
      request('POST', cfg.api + '/pairings', { device_id: device, hbbtv_app: cfg.slug }, function (status, d) {
        st.pairBusy = false;
        if (status !== 201 || !d || !d.code) { show($('pair'), false); return; }
        st.pair = { code: d.code, until: now() + 8 * 60 * 1000 }; /* ask again before the code expires */
        $('pair-qr').setAttribute('src', d.qr);
        setText($('pair-code'), d.code);
        body.setAttribute('data-pair-url', d.url);
        show($('pair'), true);
      });
    });
  }

  /* OK in the chat panel: unpair every phone paired with this TV (and drop its unused codes); a new code follows */
  function unpairPhones() {
    withDevice(function (device) {
      if (!device) { return; }
      request('POST', cfg.api + '/pairings/cancel', { device_id: device }, function (status, d) {
        if (status !== 200 || !d) { return; }
        setText($('pair-note'), d.unpaired ? 'Phones unpaired.' : 'No phone was paired.');
        body.setAttribute('data-unpaired', String(d.unpaired));
        st.pair = null;
        pairPhone();
      });
    });
  }

  /* ---- chat reader (long-poll) ---- */
  function startChat() {
    if (!cfg.room || st.chatOn) { return; }
    st.chatOn = true;
    chatLoop();
  }
  function stopChat() { st.chatOn = false; }
  function chatLoop() {
    var url;
    if (!st.chatOn || st.chatBusy) { return; }
    st.chatBusy = true;
    url = cfg.api + '/chat/' + enc(cfg.room) + '/messages' + (st.cursor ? '?after=' + enc(st.cursor) : '');
    request('GET', url, null, function (status, d) {
      var i, list = $('chat-list'), m, li;
      st.chatBusy = false;
      if (status === 200 && d && d.messages) {
        for (i = 0; d.deleted && i < d.deleted.length; i++) {
          li = $('msg-' + d.deleted[i]); /* removed by a moderator: gone within one poll */
          if (li && li.parentNode) { li.parentNode.removeChild(li); }
        }
        for (i = 0; i < d.messages.length; i++) {
          m = d.messages[i];
          li = make('div', 'msg');
          li.id = 'msg-' + m.id;
          li.appendChild(make('b', 'nick', m.nickname));
          li.appendChild(make('span', 'text', m.text));
          list.appendChild(li);
        }
        while (list.childNodes.length > 8) { list.removeChild(list.firstChild); }
        if (d.cursor !== undefined && d.cursor !== null) { st.cursor = String(d.cursor); }
        setTimeout(chatLoop, 50);
      } else {
        setTimeout(chatLoop, 3000); /* server away: back off, keep the app alive */
      }
    }, 35000);
  }

  /* ---- VOD: stop the broadcast, play the DASH MPD, come back to broadcast at the end ---- */
  function vodItems() {
    var list = $('vod-list');
    return list ? list.getElementsByTagName('li') : [];
  }
  function renderVod() {
    var items = vodItems(), i;
    for (i = 0; i < items.length; i++) {
      if (i === st.vodSel) { addClass(items[i], 'selected'); } else { removeClass(items[i], 'selected'); }
    }
  }
  /* the show's live channel (the "extra camera"), first in the Clips list when the show has one */
  function findLive() {
    request('GET', cfg.api + '/shows?hbbtv_app=' + enc(cfg.slug), null, function (status, d) {
      var ch = status === 200 && d && d.shows && d.shows.length ? d.shows[0].live_channel : null, list, li, empty;
      if (!ch || cfg.live) { return; }
      cfg.live = '/live/' + enc(ch) + '/' + cfg.liveMpd;
      list = $('vod-list');
      if (!list) {
        list = make('ul');
        list.id = 'vod-list';
        empty = $('panel-vod').getElementsByTagName('p');
        if (empty.length) { show(empty[0], false); }
        $('panel-vod').appendChild(list);
      }
      li = make('li', 'live', 'Live: watch the extra camera');
      list.insertBefore(li, list.firstChild);
      cfg.vod.unshift(cfg.live);
      cfg.subs.unshift([]);
      /* the desktop preview plays it with the live embed player (hls.js), as it does clips */
      cfg.embed.unshift(body.getAttribute('data-preview') ? '/embed/live/' + enc(ch) + '?autoplay=1' : '');
      if (st.panel === 'vod') { renderVod(); }
    });
  }
  function playVod() {
    var mpd = cfg.vod[st.vodSel], box = $('vodbox'), player, live = !!cfg.live && mpd === cfg.live;
    if (!mpd) { return; }
    stopBroadcast();
    if (body.getAttribute('data-preview') && cfg.embed[st.vodSel]) {
      /* desktop preview: browsers have no OIPF DASH object; the embed player (hls.js) plays the clip. Focus
         stays on this document, so BACK (Backspace) still returns to the overlay. */
      player = document.createElement('iframe');
      player.setAttribute('src', cfg.embed[st.vodSel]);
      player.setAttribute('allow', 'autoplay; fullscreen');
      player.setAttribute('title', live ? 'Live' : 'Clip');
      player.setAttribute('tabindex', '-1');
      player.play = function () { /* the embed page autoplays */ };
      player.onload = function () { watchTracks(frameVideo(player)); };
    } else if (cfg.variant === 'xhtml') {
      player = document.createElement('object');
      player.setAttribute('type', 'application/dash+xml');
      player.setAttribute('data', mpd);
      player.onPlayStateChange = function () {
        if (player.playState === 5 || player.playState === 6) { endVod(); }
        if (player.playState === 1) { applySubs(); } /* components are known once it plays */
      };
    } else {
      player = document.createElement('video');
      player.setAttribute('src', mpd);
      player.onended = endVod;
      player.onerror = endVod;
      watchTracks(player);
    }
    player.id = 'vod';
    player.className = 'fullscreen';
    box.appendChild(player);
    st.vod = player;
    body.setAttribute('data-playing', live ? 'live' : 'vod');
    if (!live) { show($('overlay'), false); } /* live: the overlay stays on top of the extra camera */
    startSubs(cfg.subs[st.vodSel] || []);
    setKeyset(MASK_RED | MASK_NAV | (st.subs.length ? MASK_YELLOW : 0));
    try { player.play(1); } catch (e) { endVod(); }
  }
  function endVod() {
    var player = st.vod;
    if (!player) { return; }
    st.vod = null;
    st.subs = [];
    show($('subs'), false);
    try { player.stop(); } catch (e) { try { player.pause(); } catch (e2) { /* ignore */ } }
    if (player.parentNode) { player.parentNode.removeChild(player); }
    bindBroadcast();
    body.setAttribute('data-playing', 'broadcast');
    if (st.open) { show($('overlay'), true); setKeyset(MASK_RED | MASK_COLOURS | MASK_NAV); } else { idleKeyset(); }
  }

  /* ---- subtitles: the clip's MPD carries EBU-TT-D per language; the terminal's DASH player decodes it. An HTML5
     video element lists those as textTracks (HbbTV 2.x); the A/V control object as subtitle components (OIPF
     DAE). YELLOW while a clip plays steps Off -> each language; the choice carries over to the next clip. ---- */
  function startSubs(list) {
    var saved = store.get('onair.subs') || '', i;
    st.subs = list;
    st.subIdx = 0;
    for (i = 0; saved && i < list.length; i++) { if (list[i].lang === saved) { st.subIdx = i + 1; break; } }
    show($('subs'), list.length > 0);
    applySubs();
  }
  function nextSubs() {
    st.subIdx = (st.subIdx + 1) % (st.subs.length + 1);
    store.set('onair.subs', st.subIdx ? st.subs[st.subIdx - 1].lang : '');
    applySubs();
  }
  function names(want, language) {
    var l = String(language || '').toLowerCase();
    return !!want && !!l && (want.codes.indexOf(' ' + l + ' ') >= 0 || want.codes.indexOf(' ' + l.split('-')[0] + ' ') >= 0);
  }
  function frameVideo(frame) {
    try { return frame.contentWindow.document.getElementsByTagName('video')[0] || null; } catch (e) { return null; }
  }
  /* a DASH player lists its text tracks once it has read the MPD: choose again as they come */
  function watchTracks(video) {
    if (!video) { return; }
    try { video.addEventListener('loadedmetadata', applySubs, false); } catch (e) { /* ignore */ }
    try { video.textTracks.addEventListener('addtrack', applySubs, false); } catch (e2) { /* no event */ }
    applySubs();
  }
  function applySubs() {
    var p = st.vod, want = st.subIdx ? st.subs[st.subIdx - 1] : null, video, tracks, t, comps, on, i, hit = false;
    if (!p) { return; }
    setText($('subs-label'), 'Subtitles: ' + (want ? want.label : 'Off'));
    body.setAttribute('data-subtitles', want ? want.lang : 'off');
    video = p.tagName && p.tagName.toLowerCase() === 'iframe' ? frameVideo(p) : (p.textTracks ? p : null);
    if (video && video.textTracks) {
      tracks = video.textTracks;
      for (i = 0; i < tracks.length; i++) {
        t = tracks[i];
        if (t.kind !== 'subtitles' && t.kind !== 'captions') { continue; }
        on = !hit && names(want, t.language);
        hit = hit || on;
        if (t.mode !== (on ? 'showing' : 'disabled')) { t.mode = on ? 'showing' : 'disabled'; }
      }
    } else if (p.getComponents) {
      try {
        comps = p.getComponents(SUBTITLE_COMPONENT) || [];
        for (i = 0; i < comps.length && want; i++) {
          if (names(want, comps[i].language)) { p.selectComponent(comps[i]); hit = true; break; }
        }
        if (!hit) {
          on = p.getCurrentActiveComponents(SUBTITLE_COMPONENT) || [];
          for (i = 0; i < on.length; i++) { p.unselectComponent(on[i]); }
        }
      } catch (e) { /* the terminal has no subtitle components */ }
    }
  }

  /* ---- banner over an ad spot, picked up by the regular state poll ---- */
  function renderBanner() {
    var b = st.banner;
    show($('banner'), !!b && !st.open && !st.vod);
    if (b) {
      $('banner-img').setAttribute('src', b.image_url);
      setText($('banner-label'), b.label || 'Press OK');
    }
  }
  function clickBanner() {
    var b = st.banner;
    if (!b) { return; }
    request('POST', '/hbbtv/' + enc(cfg.slug) + '/banners/' + enc(b.id) + '/clicks', {}, function () { /* counted */ });
    openOverlay(st.panel);
    st.target = true;
    for (var i = 0; i < PANELS.length; i++) { show($('panel-' + PANELS[i]), false); }
    $('target-frame').setAttribute('src', b.target_url);
    show($('target'), true);
  }
  function tick() {
    request('GET', '/hbbtv/' + enc(cfg.slug) + '/state.json', null, function (status, d) {
      if (status === 200 && d) {
        if (d.poll_id !== undefined && String(d.poll_id || '') !== cfg.pollId) { cfg.pollId = String(d.poll_id || ''); st.poll = null; st.sel = 0; }
        st.banner = d.banner || null;
        if (d.interval_ms) { cfg.interval = d.interval_ms; }
        renderBanner();
        if (!st.open && !st.vod) { idleKeyset(); }
      }
      if (st.open && st.panel === 'vote') { fetchResults(); }
      setTimeout(tick, st.open ? st.resultsInterval : cfg.interval);
    });
  }

  /* ---- keys ---- */
  /* desktop preview: keyboard letters stand in for the colour keys, Backspace for BACK */
  var PREVIEW_KEYS = { 82: VK.RED, 71: VK.GREEN, 89: VK.YELLOW, 66: VK.BLUE, 8: VK.BACK };

  function onKey(e) {
    var k = e.keyCode, handled = true, n;
    if (body.getAttribute('data-preview') && PREVIEW_KEYS[k]) { k = PREVIEW_KEYS[k]; }
    if (st.vod) {
      if (k === VK.BACK || k === VK.RED) { endVod(); } else if (k === VK.YELLOW && st.subs.length) { nextSubs(); } else { handled = false; }
    } else if (!st.open) {
      if (k === VK.RED) { openOverlay('vote'); } else if (k === VK.ENTER && st.banner) { clickBanner(); } else { handled = false; }
    } else if (k === VK.RED || k === VK.BACK) {
      if (st.target) { selectPanel(st.panel); } else { closeOverlay(); }
    } else if (k === VK.GREEN) { selectPanel('vote'); } else if (k === VK.YELLOW) { selectPanel('chat'); } else if (k === VK.BLUE) { selectPanel('vod');
    } else if (k === VK.LEFT || k === VK.RIGHT) {
      for (n = 0; n < PANELS.length && PANELS[n] !== st.panel; n++) { /* find */ }
      selectPanel(PANELS[(n + (k === VK.LEFT ? PANELS.length - 1 : 1)) % PANELS.length]);
    } else if (k === VK.UP || k === VK.DOWN) {
      if (st.panel === 'vote' && st.poll && st.poll.options.length) {
        st.sel = (st.sel + (k === VK.UP ? st.poll.options.length - 1 : 1)) % st.poll.options.length;
        renderPoll();
      } else if (st.panel === 'vod') {
        n = vodItems().length;
        if (n) { st.vodSel = (st.vodSel + (k === VK.UP ? n - 1 : 1)) % n; renderVod(); }
      }
    } else if (k === VK.ENTER) {
      if (st.panel === 'vote') { vote(); } else if (st.panel === 'vod') { playVod(); } else if (st.panel === 'chat') { unpairPhones(); }
    } else {
      handled = false;
    }
    if (handled && e.preventDefault) { e.preventDefault(); }
  }

  function init() {
    var a = ownerApp();
    try { a.show(); } catch (e) { /* preview */ }
    bindBroadcast();
    setKeyset(MASK_RED);
    document.addEventListener('keydown', onKey, false);
    body.setAttribute('data-playing', 'broadcast');
    body.setAttribute('data-app', 'ready');
    withDevice(function () { /* registered early so the first vote is a single request */ });
    fetchResults(); /* warm the panel so RED shows it at once */
    setTimeout(tick, 50);
    findLive();
  }

  init();
}());
