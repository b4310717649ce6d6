// Charts drawn by uPlot (canvas; it sets sizes through element.style, which a CSP without 'unsafe-inline'
// allows, unlike style attributes or <style> tags). A canvas says nothing to a screen reader, so each chart
// is a labelled figure with the same numbers as a table underneath.
import uPlot from "uplot";
import { el } from "./util.js";

const COLOURS = ["#0b57d0", "#b3261e", "#146c2e", "#8a4b00"];
const charts = new Set();

// One observer for every chart: a chart follows its box's width (1366 px desktop, tablet, resized window).
const resizer = new ResizeObserver(() => {
  for (const c of charts) {
    if (!c.root.isConnected) { charts.delete(c); continue; }
    const width = c.root.parentElement.clientWidth;
    if (width && Math.abs(width - c.width) > 4) c.setSize({ width, height: c.height });
  }
});

function table(caption, head, rows) {
  return el("details", { class: "chart-data" }, el("summary", {}, "Show as a table"),
    el("table", {}, el("caption", { class: "visually-hidden" }, caption),
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((v) => el("td", {}, v)))))));
}

function figure(box, title, summary) {
  box.textContent = "";
  const plot = el("div", { class: "chart", role: "img", "aria-label": `${title}: ${summary}` });
  const legend = el("p", { class: "chart-legend", "aria-hidden": "true" });
  box.append(el("figure", { class: "chart-figure" }, el("figcaption", {}, title), legend, plot));
  return { plot, legend };
}

function legendOf(legend, names) {
  names.forEach((name, i) => legend.append(el("span", { class: `key k${i}` }, name), " "));
}

function draw(plot, opts, data) {
  const width = plot.parentElement.clientWidth || 600;
  const chart = new uPlot({ width, height: 200, legend: { show: false }, cursor: { show: true }, ...opts }, data, plot);
  charts.add(chart);
  resizer.observe(plot.parentElement);
  return chart;
}

// Days (ISO dates, any order) as a gap-free run from the first to today, each series 0 where nothing was counted.
function dailyRun(days, keys, span) {
  const byDay = new Map(days.map((d) => [d.day, d]));
  const end = new Date(); end.setUTCHours(0, 0, 0, 0);
  const xs = [], ys = keys.map(() => []), labels = [];
  for (let i = span - 1; i >= 0; i--) {
    const day = new Date(end.getTime() - i * 86400000), iso = day.toISOString().slice(0, 10), row = byDay.get(iso);
    xs.push(day.getTime() / 1000); labels.push(iso);
    keys.forEach((k, j) => ys[j].push(row ? Number(row[k]) || 0 : 0));
  }
  return { xs, ys, labels };
}

// Several counts per day over the last `span` days: [{day: "2026-12-01", a: 1, b: 2}, ...].
export function perDayChart(box, { title, days, series, span = 30 }) {
  const { xs, ys, labels } = dailyRun(days, series.map((s) => s.key), span);
  const totals = series.map((s, i) => `${ys[i].reduce((n, v) => n + v, 0)} ${s.label.toLowerCase()}`);
  const { plot, legend } = figure(box, title, `${totals.join(", ")} in the last ${span} days`);
  legendOf(legend, series.map((s) => s.label));
  draw(plot, {
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t : "")) }],
    series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i], width: 2,
                                            fill: i === 0 ? "rgba(11, 87, 208, 0.08)" : undefined,
                                            points: { show: span <= 31 } }))],
  }, [xs, ...ys]);
  box.append(table(title, ["Day", ...series.map((s) => s.label)],
    labels.map((d, i) => [d, ...ys.map((y) => y[i])]).filter((r) => r.slice(1).some((v) => v)).reverse()));
}

// One bar per named category (referrers, quartiles).
export function barChart(box, { title, unit, bars }) {
  const summary = bars.map((b) => `${b.label} ${b.value}`).join(", ") || "nothing yet";
  const { plot } = figure(box, title, `${summary} ${unit}`);
  const xs = bars.map((_, i) => i), ys = bars.map((b) => b.value);
  const paths = uPlot.paths.bars({ size: [0.6, 80] });
  draw(plot, {
    scales: { x: { time: false, range: () => [-0.5, Math.max(0.5, bars.length - 0.5)] },
              y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{ values: (u, ticks) => ticks.map((t) => (bars[t] ? bars[t].label : "")), splits: () => xs },
           { values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? t : "")) }],
    series: [{}, { label: unit, stroke: COLOURS[0], fill: "rgba(11, 87, 208, 0.55)", paths, points: { show: false } }],
  }, [xs, ys]);
  box.append(table(title, ["", unit], bars.map((b) => [b.label, b.value])));
}
