// HbbTV red-button apps: list with preview and AIT links, create and edit (the poll chosen from a list), delete
// (after a confirmation), banners.
import { $, api, el, flash, confirmAction } from "./util.js";
import { loadPolls } from "./polls.js";

const API = "/api/v1/hbbtv/apps";

export function fillPolls(polls) {
  const select = $("#hbbtv-poll");
  if (!select) return;
  const keep = select.value;
  select.textContent = "";
  select.append(el("option", { value: "" }, "no poll"));
  for (const p of polls) select.append(el("option", { value: p.id }, `${p.question} (id ${p.id})`));
  select.value = keep;
}

let editing = null;  // the slug of the app the form edits, or null when it creates

function startEdit(a) {
  const form = $("#hbbtv-create");
  editing = a.slug;
  form.name.value = a.name; form.slug.value = a.slug; form.slug.disabled = true;  // TVs know it from the AIT
  form.org_id.value = a.org_id; form.app_id.value = a.app_id; form.control_code.value = a.control_code;
  form.poll_id.value = a.poll_id || ""; form.chat_room.value = a.chat_room || "";
  form.primary.value = (a.colours && a.colours.primary) || "#c8102e";
  $("#hbbtv-form-h").textContent = `Edit ${a.name}`;
  $("#hbbtv-submit").textContent = "Save changes";
  $("#hbbtv-cancel").hidden = false;
  form.name.focus();
}

function stopEdit() {
  const form = $("#hbbtv-create");
  editing = null;
  form.reset(); form.slug.disabled = false;
  $("#hbbtv-form-h").textContent = "New app";
  $("#hbbtv-submit").textContent = "Create app";
  $("#hbbtv-cancel").hidden = true;
}

async function remove(a) {
  if (!await confirmAction(`Delete the HbbTV app “${a.name}”? TVs showing it lose it; its AIT stops working.`, "Delete")) return;
  try {
    await api("DELETE", `${API}/${encodeURIComponent(a.slug)}`);
    if (editing === a.slug) stopEdit();
    flash(`Deleted ${a.name}`, true);
    await loadApps();
  } catch (e) { flash(e.message, false); }
}

async function loadApps() {
  const data = await api("GET", API);
  const body = $("#apps"), banner = $("#banner-app");
  body.textContent = "";
  if (banner) banner.textContent = "";
  for (const a of data.apps) {
    const slug = encodeURIComponent(a.slug);
    body.append(el("tr", { "data-app": a.slug },
      el("td", {}, a.name), el("td", {}, a.slug), el("td", {}, `${a.org_id}/${a.app_id}`),
      el("td", {}, a.control_code), el("td", {}, a.poll_id || "–"), el("td", {}, a.chat_room || "–"),
      el("td", {}, el("a", { href: `/hbbtv/${slug}/` }, "preview"), " ",
         el("a", { href: `/hbbtv/${slug}/app.aitx?download=1` }, "download AIT")),
      el("td", { class: "actions" },
         el("button", { type: "button", "data-action": "edit", onclick: () => startEdit(a) },
            "Edit", el("span", { class: "visually-hidden" }, ` ${a.name}`)),
         el("button", { type: "button", class: "danger", "data-action": "delete", onclick: () => remove(a) },
            "Delete", el("span", { class: "visually-hidden" }, ` ${a.name}`)))));
    if (banner) banner.append(el("option", { value: a.slug }, a.name));
  }
}

export function hbbtv(canPolls) {
  const form = $("#hbbtv-create");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: form.name.value, org_id: Number(form.org_id.value), app_id: Number(form.app_id.value),
                   control_code: form.control_code.value, colours: { primary: form.primary.value } };
    try {
      if (editing) {
        body.poll_id = form.poll_id.value || null;
        body.chat_room = form.chat_room.value || null;
        const app = await api("PATCH", `${API}/${encodeURIComponent(editing)}`, body);
        flash(`Saved ${app.name}`, true);
        stopEdit();
      } else {
        body.slug = form.slug.value;
        if (form.poll_id.value) body.poll_id = form.poll_id.value;
        if (form.chat_room.value) body.chat_room = form.chat_room.value;
        const app = await api("POST", API, body);
        flash(`Created ${app.name}; its AIT is at ${app.ait}`, true);
        form.reset();
      }
      await loadApps();
    } catch (e) { flash(e.message, false); }
  });
  $("#hbbtv-cancel").addEventListener("click", stopEdit);
  const banner = $("#banner");
  if (banner) banner.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const body = { image_url: f.image_url.value, target_url: f.target_url.value,
                   duration_s: Number(f.duration_s.value) };
    if (f.label.value) body.label = f.label.value;
    try { const b = await api("POST", `${API}/${encodeURIComponent(f.slug.value)}/banners`, body); flash(`Banner ${b.id} is on air`, true); }
    catch (e) { flash(e.message, false); }
  });
  loadApps().catch((e) => flash(e.message, false));
  if (!canPolls) loadPolls(fillPolls).catch(() => {});  // the producer's poll list (polls:read)
}
