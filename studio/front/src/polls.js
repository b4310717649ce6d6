// Polls with live bars (one SSE stream per poll card), transitions with confirmation, CSV export.
import { $, api, el, flash, confirmAction } from "./util.js";

const streams = {};
const CONFIRM = {
  close: "Close this poll? Viewers can no longer vote.",
  reset: "Reset this poll? All its votes are deleted.",
};

function drawResults(card, res) {
  const max = Math.max(1, res.total);
  card.querySelector(".total").textContent = `${res.total} votes`;
  card.querySelector(".state").textContent = res.status;
  card.dataset.status = res.status;
  for (const o of res.options) {
    const line = card.querySelector(`.option[data-option="${o.id}"]`);
    if (!line) continue;
    const bar = line.querySelector(".bar");
    bar.style.width = `${(100 * o.votes) / max}%`;  // CSSOM, allowed by the CSP (no inline style attribute)
    bar.dataset.votes = String(o.votes);
    line.querySelector(".count").textContent = String(o.votes);
  }
}

function pollCard(p, onChange) {
  const card = el("article", { class: "poll", "data-poll": p.id, "data-status": p.status, "aria-label": p.question },
    el("header", {}, el("strong", {}, p.question), " ", el("span", { class: `state badge` }, p.status), " · ",
       el("span", { class: "total" }, "0 votes"), " · id ", el("code", { class: "poll-id" }, p.id)));
  for (const o of p.options) {
    card.append(el("div", { class: "option", "data-option": String(o.id) },
      el("span", { class: "label" }, o.label),
      el("div", { class: "track" }, el("div", { class: "bar", "data-votes": "0" })),
      el("span", { class: "count" }, "0")));
  }
  const actions = el("div", { class: "actions" });
  for (const action of ["open", "close", "reset"]) {
    actions.append(el("button", { type: "button", "data-action": action, onclick: async () => {
      if (CONFIRM[action] && !await confirmAction(CONFIRM[action], action[0].toUpperCase() + action.slice(1))) return;
      try { await api("POST", `/api/v1/polls/${encodeURIComponent(p.id)}/${action}`); onChange(); }
      catch (e) { flash(e.message, false); }
    } }, action[0].toUpperCase() + action.slice(1)));
  }
  actions.append(el("a", { href: `/api/v1/polls/${encodeURIComponent(p.id)}/export.csv`, download: `poll-${p.id}.csv` }, "Export CSV"));
  card.append(actions);
  watch(p.id, card);
  return card;
}

function watch(id, card) {
  if (streams[id]) streams[id].close();
  const es = new EventSource(`/api/v1/polls/${encodeURIComponent(id)}/events`);
  es.addEventListener("results", (ev) => drawResults(card, JSON.parse(ev.data)));
  streams[id] = es;  // EventSource reconnects on its own
}

export async function loadPolls(onList) {
  const data = await api("GET", "/api/v1/polls");
  const list = $("#poll-list");
  if (list) {
    for (const k of Object.keys(streams)) { streams[k].close(); delete streams[k]; }
    list.textContent = "";
    for (const p of data.polls) list.append(pollCard(p, () => {}));
  }
  if (onList) onList(data.polls);
  return data.polls;
}

export function polls(onList) {
  const form = $("#new-poll");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const options = form.options.value.split("\n").map((s) => s.trim()).filter(Boolean);
    try {
      const p = await api("POST", "/api/v1/polls", { question: form.question.value, options });
      form.reset();
      flash(`Poll created (id ${p.id})`, true);
      await loadPolls(onList);
    } catch (e) { flash(e.message, false); }
  });
  loadPolls(onList).catch((e) => flash(e.message, false));
}
