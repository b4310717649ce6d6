// HbbTV red-button apps: list with preview and AIT links, create (the poll chosen from a list), banners.
import { $, api, el, flash } from "./util.js";
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
         el("a", { href: `/hbbtv/${slug}/app.aitx?download=1` }, "download AIT"))));
    if (banner) banner.append(el("option", { value: a.slug }, a.name));
  }
}

export function hbbtv(canPolls) {
  const form = $("#hbbtv-create");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { slug: form.slug.value, name: form.name.value, org_id: Number(form.org_id.value),
                   app_id: Number(form.app_id.value), control_code: form.control_code.value,
                   colours: { primary: form.primary.value } };
    if (form.poll_id.value) body.poll_id = form.poll_id.value;
    if (form.chat_room.value) body.chat_room = form.chat_room.value;
    try {
      const app = await api("POST", API, body);
      flash(`Created ${app.name}; its AIT is at ${app.ait}`, true);
      form.reset();
      await loadApps();
    } catch (e) { flash(e.message, false); }
  });
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
