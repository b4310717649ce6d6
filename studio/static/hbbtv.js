/* Studio page for the app registry: plain ES5, all data shown as text, admin token kept for this tab only. */
(function () {
  'use strict';
  var API = '/api/v1/hbbtv/apps';
  function $(id) { return document.getElementById(id); }
  function say(text, ok) { var m = $('message'); m.textContent = text; m.className = ok ? 'ok' : 'error'; }
  function csrf() { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.getAttribute('content') : ''; }
  function token() { return $('token').value || sessionStorage.getItem('onair.admin') || ''; }

  function call(method, url, body, cb) {
    var r = new XMLHttpRequest();
    r.open(method, url, true);
    if (token()) { r.setRequestHeader('Authorization', 'Bearer ' + token()); } /* else the /studio/ login cookie */
    else if (csrf() && method !== 'GET') { r.setRequestHeader('X-CSRF-Token', csrf()); }
    if (body) { r.setRequestHeader('Content-Type', 'application/json'); }
    r.onreadystatechange = function () {
      var data = null;
      if (r.readyState !== 4) { return; }
      try { data = JSON.parse(r.responseText); } catch (e) { data = null; }
      if (r.status === 401) { say('Log in at /studio/ (or paste the admin token), then Load apps.', false); return; }
      if (r.status >= 400) { say((data && (data.title + ': ' + data.detail)) || ('HTTP ' + r.status), false); return; }
      cb(data);
    };
    r.send(body ? JSON.stringify(body) : null);
  }

  function cell(row, text) { var td = document.createElement('td'); td.textContent = text === null ? '' : String(text); row.appendChild(td); return td; }
  function link(td, href, text) { var a = document.createElement('a'); a.href = href; a.textContent = text; td.appendChild(a); td.appendChild(document.createTextNode(' ')); }

  function load() {
    if ($('token').value) { sessionStorage.setItem('onair.admin', $('token').value); }
    call('GET', API, null, function (data) {
      var body = $('apps'), i, app, row, links;
      while (body.firstChild) { body.removeChild(body.firstChild); }
      for (i = 0; i < data.apps.length; i++) {
        app = data.apps[i];
        row = document.createElement('tr');
        cell(row, app.slug); cell(row, app.name); cell(row, app.org_id + '/' + app.app_id);
        cell(row, app.control_code); cell(row, app.poll_id); cell(row, app.chat_room);
        links = cell(row, '');
        link(links, '/hbbtv/' + encodeURIComponent(app.slug) + '/', 'preview');
        link(links, '/hbbtv/' + encodeURIComponent(app.slug) + '/app.aitx?download=1', 'download AIT');
        body.appendChild(row);
      }
      say(data.apps.length + ' app(s)', true);
    });
  }

  function fields(form) {
    var out = {}, i, el;
    for (i = 0; i < form.elements.length; i++) {
      el = form.elements[i];
      if (el.name && el.value !== '') { out[el.name] = el.type === 'number' ? Number(el.value) : el.value; }
    }
    return out;
  }

  $('load').onclick = load;
  $('create').onsubmit = function (e) {
    var f = fields(this);
    e.preventDefault();
    f.colours = { primary: f.primary };
    delete f.primary;
    f.vod_assets = f.vod_assets ? f.vod_assets.split(/\s*,\s*/) : [];
    call('POST', API, f, function (app) { say('Created ' + app.slug + '; AIT at ' + app.ait, true); load(); });
  };
  $('banner').onsubmit = function (e) {
    var f = fields(this), slug = f.slug;
    e.preventDefault();
    delete f.slug;
    call('POST', API + '/' + encodeURIComponent(slug) + '/banners', f, function (b) { say('Banner ' + b.id + ' is on air', true); });
  };
  if (sessionStorage.getItem('onair.admin')) { $('token').value = sessionStorage.getItem('onair.admin'); }
  load();
}());
