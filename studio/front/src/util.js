// Shared helpers: the API client (session cookie + CSRF token), DOM building (text only, never innerHTML),
// messages and a confirmation dialog.
const meta = document.querySelector('meta[name="csrf-token"]');
export const CSRF = meta ? meta.getAttribute("content") : "";
export const PERMS = new Set((document.body.dataset.perms || "").split(" ").filter(Boolean));
export const BASE = document.body.dataset.base || location.origin;

export async function api(method, path, body) {
  // the studio shows what is true now: never an answer a public API response left in the HTTP cache
  const opts = { method, credentials: "same-origin", headers: {}, cache: "no-cache" };
  if (method !== "GET" && CSRF) opts.headers["X-CSRF-Token"] = CSRF;
  if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const resp = await fetch(path, opts);
  if (resp.status === 204) return null;
  const type = resp.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await resp.json() : { detail: await resp.text() };
  if (!resp.ok) throw new Error(data.detail || data.title || `HTTP ${resp.status}`);
  return data;
}

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

export function $(sel, root) { return (root || document).querySelector(sel); }

export function flash(text, ok) {
  const box = $("#flash");
  if (!box) return;
  box.textContent = text;
  box.className = "flash " + (ok === false ? "error" : "ok");
}

// Resolves true when the person confirms in the page's <dialog>.
export function confirmAction(text, okLabel) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel || "Confirm";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(r)}` : `${m}:${pad(r)}`;
}

export function fmtDate(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { day: "numeric", month: "short", year: "numeric",
                                                   hour: "2-digit", minute: "2-digit" });
}

export function copyText(text, button) {
  const done = () => { if (button) button.textContent = "Copied"; };
  if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, done); else done();
}

export function csv(value) { return value.split(",").map((s) => s.trim()).filter(Boolean); }
