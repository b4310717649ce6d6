// Admin pages: people (add, role, disable, reset), partners (key shown once, revoke, usage), audit log,
// and one's own password.
import { $, api, el, flash, confirmAction, fmtDate } from "./util.js";
import { perDayChart } from "./charts.js";

const ROLES = ["admin", "editor", "producer", "moderator"];

function showOnce(box, input, value) { box.hidden = false; input.value = value; input.select(); }

export function users() {
  const load = async () => {
    const data = await api("GET", "/api/v1/users");
    const body = $("#users");
    body.textContent = "";
    for (const u of data.users) {
      const name = encodeURIComponent(u.name);
      const role = el("select", { "aria-label": `Role of ${u.name}`, onchange: async (ev) => {
        try { await api("PATCH", `/api/v1/users/${name}`, { role: ev.target.value }); flash(`${u.name} is now ${ev.target.value}`, true); }
        catch (e) { flash(e.message, false); load(); }
      } }, ...ROLES.map((r) => el("option", { value: r, selected: r === u.role }, r)));
      const toggle = el("button", { type: "button", onclick: async () => {
        if (!u.disabled && !await confirmAction(`Disable ${u.name}? Their sessions end now.`, "Disable")) return;
        try { await api("PATCH", `/api/v1/users/${name}`, { disabled: !u.disabled }); load(); }
        catch (e) { flash(e.message, false); }
      } }, u.disabled ? "Enable" : "Disable");
      const reset = el("button", { type: "button", onclick: async () => {
        if (!await confirmAction(`Give ${u.name} a new one-time password?`, "Reset password")) return;
        try { const r = await api("POST", `/api/v1/users/${name}/reset`); $("#ot-name").textContent = u.name; showOnce($("#one-time"), $("#ot-password"), r.password); }
        catch (e) { flash(e.message, false); }
      } }, "Reset password");
      body.append(el("tr", { "data-user": u.name }, el("td", {}, u.name), el("td", {}, role),
        el("td", {}, u.disabled ? "disabled" : (u.must_change_password ? "invited" : "active")),
        el("td", {}, fmtDate(u.last_login_at)), el("td", { class: "actions" }, toggle, " ", reset)));
    }
  };
  $("#new-user").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      const u = await api("POST", "/api/v1/users", { name: f.name.value, role: f.role.value });
      $("#ot-name").textContent = u.name;
      showOnce($("#one-time"), $("#ot-password"), u.password);
      f.reset(); await load();
    } catch (e) { flash(e.message, false); }
  });
  load().catch((e) => flash(e.message, false));
}

let shownUsage = null;

function usageChart(name, days) {
  shownUsage = name;
  $("#usage-box").hidden = false;
  perDayChart($("#usage-chart"), { title: `${name}: usage per day (30 days)`, days,
    series: [{ key: "feed_pulls", label: "Feed pulls" }, { key: "api_calls", label: "API calls" }] });
}

export function partners() {
  const load = async () => {
    const data = await api("GET", "/api/v1/partners");
    const body = $("#partners");
    body.textContent = "";
    for (const p of data.partners) {
      const name = encodeURIComponent(p.name);
      const usage = el("td", { class: "usage" }, "…");
      api("GET", `/api/v1/partners/${name}/usage`).then((u) => {
        const week = new Date(Date.now() - 7 * 86400000).toISOString().slice(0, 10);
        const days = u.days.filter((d) => d.day > week);
        const pulls = days.reduce((n, d) => n + d.feed_pulls, 0), calls = days.reduce((n, d) => n + d.api_calls, 0);
        usage.textContent = `${pulls} feed pulls, ${calls} API calls (7 days) `;
        usage.append(el("button", { type: "button", class: "chart-open", onclick: () => usageChart(p.name, u.days) },
          "Chart", el("span", { class: "visually-hidden" }, ` of ${p.name}'s usage`)));
        if (!shownUsage) usageChart(p.name, u.days);
      }, () => { usage.textContent = "–"; });
      const revoke = p.revoked_at ? "" : el("button", { type: "button", class: "danger", onclick: async () => {
        if (!await confirmAction(`Revoke ${p.name}'s key? Their feeds and API calls stop working.`, "Revoke")) return;
        try { await api("DELETE", `/api/v1/partners/${name}`); load(); } catch (e) { flash(e.message, false); }
      } }, "Revoke");
      body.append(el("tr", { "data-partner": p.name }, el("td", {}, p.name, " ", el("code", {}, `${p.key_prefix}…`)),
        el("td", {}, p.scopes.join(", ")), el("td", {}, `${p.rate_per_minute}/min`),
        el("td", {}, p.revoked_at ? `revoked ${fmtDate(p.revoked_at)}` : "active"), usage, el("td", {}, revoke)));
    }
  };
  $("#new-partner").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const scopes = [...f.querySelectorAll("[name=scopes]:checked")].map((c) => c.value);
    try {
      const p = await api("POST", "/api/v1/partners", { name: f.name.value, scopes, rate_per_minute: Number(f.rate_per_minute.value) });
      showOnce($("#new-key"), $("#key-value"), p.key);
      f.reset(); await load();
    } catch (e) { flash(e.message, false); }
  });
  load().catch((e) => flash(e.message, false));
}

export function audit() {
  let next = null;
  const load = async (url, append) => {
    const data = await api("GET", url);
    const body = $("#audit");
    if (!append) body.textContent = "";
    for (const e of data.entries) {
      body.append(el("tr", {}, el("td", {}, fmtDate(e.at)), el("td", {}, e.actor), el("td", {}, el("code", {}, e.action)),
        el("td", {}, [e.object_type, e.object_id].filter(Boolean).join(" ")), el("td", {}, e.ip || "–")));
    }
    next = data.next || null;
    $("#more").hidden = !next;
  };
  $("#audit-filter").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const params = new URLSearchParams({ limit: "100" });
    for (const k of ["actor", "action"]) if (ev.target[k].value) params.set(k, ev.target[k].value);
    load(`/api/v1/audit?${params}`, false).catch((e) => flash(e.message, false));
  });
  $("#more").addEventListener("click", () => next && load(next, true));
  load("/api/v1/audit?limit=100", false).catch((e) => flash(e.message, false));
}

function tokens() {
  const load = async () => {
    const data = await api("GET", "/api/v1/me/tokens");
    const box = $("#token-scopes");
    if (!box.querySelector("input")) {
      for (const scope of data.grantable) {
        box.append(el("label", {}, el("input", { type: "checkbox", name: "scopes", value: scope }), ` ${scope}`));
      }
    }
    const body = $("#tokens");
    body.textContent = "";
    for (const t of data.tokens) {
      const revoke = t.revoked_at ? "" : el("button", { type: "button", class: "danger", onclick: async () => {
        if (!await confirmAction(`Revoke the token “${t.name}”? Scripts using it stop working.`, "Revoke")) return;
        try { await api("DELETE", `/api/v1/me/tokens/${t.id}`); load(); } catch (e) { flash(e.message, false); }
      } }, "Revoke");
      body.append(el("tr", { "data-token": t.name }, el("td", {}, t.name, " ", el("code", {}, `${t.prefix}…`)),
        el("td", {}, t.scopes.join(", ")), el("td", {}, fmtDate(t.last_used_at)),
        el("td", {}, t.revoked_at ? `revoked ${fmtDate(t.revoked_at)}` : "active"), el("td", {}, revoke)));
    }
  };
  $("#new-token").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const scopes = [...f.querySelectorAll("[name=scopes]:checked")].map((c) => c.value);
    try {
      const t = await api("POST", "/api/v1/me/tokens", { name: f.name.value, scopes });
      showOnce($("#new-token-value"), $("#token-value"), t.token);
      f.reset(); await load();
    } catch (e) { flash(e.message, false); }
  });
  load().catch((e) => flash(e.message, false));
}

export function account() {
  tokens();
  $("#change-password").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    try {
      await api("POST", "/api/v1/me/password", { current_password: f.current_password.value, new_password: f.new_password.value });
      f.reset(); flash("Password changed", true);
    } catch (e) { flash(e.message, false); }
  });
}
