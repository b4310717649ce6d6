// A country picker for geo rights: type a name or a code (the browser's own suggestion list, filtered as one
// types, arrow keys and Enter), Enter or "Add" puts it in the list; each chosen country has its own remove
// button. The chosen codes live in a hidden input, so the form reads them like any other field.
import { $, el } from "./util.js";

// ISO 3166-1 alpha-2, every officially assigned code (249); names come from the browser (Intl), in English
// like the rest of the studio.
const CODES = (
  "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ " +
  "BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR " +
  "CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
  "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU " +
  "ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ " +
  "LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ " +
  "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF " +
  "PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI " +
  "SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR " +
  "TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW " 
).trim().split(" ");

const names = typeof Intl !== "undefined" && Intl.DisplayNames ? new Intl.DisplayNames(["en"], { type: "region" }) : null;
export const COUNTRIES = CODES.map((code) => ({ code, name: (names && names.of(code)) || code }))
  .sort((a, b) => a.name.localeCompare(b.name, "en"));
const BY_CODE = new Map(COUNTRIES.map((c) => [c.code, c]));

export function countryName(code) { return (BY_CODE.get(code) || { name: code }).name; }

// "France (FR)", "france", "fr", "FR": the country meant, or null.
export function findCountry(text) {
  const t = text.trim();
  if (!t) return null;
  const code = /\(([A-Za-z]{2})\)\s*$/.exec(t);
  if (code) return BY_CODE.get(code[1].toUpperCase()) || null;
  if (t.length === 2 && BY_CODE.has(t.toUpperCase())) return BY_CODE.get(t.toUpperCase());
  const lower = t.toLowerCase();
  return COUNTRIES.find((c) => c.name.toLowerCase() === lower) || null;
}

function fillDatalist() {
  const list = $("#country-list");
  if (!list || list.children.length) return;
  for (const c of COUNTRIES) list.append(el("option", { value: `${c.name} (${c.code})` }));
}

// One picker: <div class="countries" data-field="geo_allow"> with a search input, an Add button, a hidden
// input named like the field and a <ul> of chosen countries. onChange runs after every change.
export function countryPicker(box, onChange) {
  fillDatalist();
  const hidden = box.querySelector("input[type=hidden]"), search = box.querySelector("input[list]");
  const chosen = box.querySelector("ul"), error = box.querySelector(".picker-error");
  let codes = [];
  const render = () => {
    hidden.value = codes.join(", ");
    chosen.textContent = "";
    for (const code of codes) {
      const name = countryName(code);
      chosen.append(el("li", { "data-code": code }, `${name} (${code}) `,
        el("button", { type: "button", class: "remove", "aria-label": `Remove ${name}`,
                       onclick: () => { remove(code); search.focus(); } }, "×")));
    }
  };
  const set = (list) => { codes = [...new Set(list.map((c) => c.toUpperCase()))]; render(); };
  const remove = (code) => { codes = codes.filter((c) => c !== code); render(); onChange(); };
  const add = () => {
    const found = findCountry(search.value);
    error.textContent = found || !search.value.trim() ? "" : `No country called “${search.value.trim()}”`;
    search.setAttribute("aria-invalid", found || !search.value.trim() ? "false" : "true");
    if (!found) return;
    if (!codes.includes(found.code)) codes.push(found.code);
    search.value = "";
    render(); onChange();
  };
  search.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); add(); } });
  // picking from the suggestion list (mouse or keyboard) replaces the text at once: take it without Enter
  search.addEventListener("input", (ev) => { if (ev.inputType === "insertReplacementText") add(); });
  box.querySelector("button.add").addEventListener("click", add);
  return { set, codes: () => codes };
}
