// @ts-check
// Reports: sales against plan, the manager's day, calls and service level per hour, queues,
// lead sources, lost deals, time per state, contact results per manager; each table as CSV; charts with uPlot (vendored,
// served by the service). Managers get their own figures, supervisors everyone's (the API
// decides; a table the API refuses is hidden).

import { ApiError, api, token } from "./lib/api.js";
import { $, h, input } from "./lib/dom.js";
import * as fmt from "./lib/format.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/reports.en.js";
import ru from "./lib/i18n/reports.ru.js";
import uPlot from "./vendor/uplot/uPlot.esm.js";

registerCatalogue({ ru, en });

/** @param {number | string | null | undefined} v */
const money = (v) => fmt.money(v, null);
/** @param {number | null | undefined} p */
const pct = (p) => (p == null ? "" : `${fmt.number(p, 1)}%`);
/** @param {...(string | number | null | undefined)} cells */
const row = (...cells) => h("tr", {}, ...cells.map((c) => h("td", { text: c == null ? "" : String(c) })));

/** The query of the period (and day) chosen. */
function query() {
  const q = new URLSearchParams();
  if (input("from").value) q.set("date_from", input("from").value);
  if (input("to").value) q.set("date_to", input("to").value);
  return q;
}
function dayQuery() {
  const q = new URLSearchParams();
  if (input("day").value) q.set("date", input("day").value);
  return q;
}

/** @type {Record<string, () => string>} the API behind each table's CSV button */
const CSV = {
  sales: () => `/api/reports?${query()}&format=csv`,
  day: () => `/api/reports/day?${dayQuery()}&format=csv`,
  hourly: () => `/api/reports/hourly?${dayQuery()}&format=csv`,
  queues: () => `/api/reports/queues?${query()}&format=csv`,
  sources: () => `/api/reports/lead-sources?${query()}&format=csv`,
  lost: () => `/api/reports/lost-reasons?${query()}&format=csv`,
  presence: () => `/api/reports/presence?${query()}&format=csv`,
  results: () => `/api/reports/results?${query()}&format=csv`,
};

/** CSV with the bearer token (a plain link could not carry it), saved as a file. @param {string} path */
async function download(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (!res.ok) throw new ApiError(res.status, `${res.status} ${res.statusText}`);
  const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "")?.[1] || "report.csv";
  const url = URL.createObjectURL(await res.blob());
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** @type {Map<string, uPlot>} */
const charts = new Map();
/**
 * @param {string} id
 * @param {uPlot.Options["series"]} series
 * @param {uPlot.AlignedData} data
 * @param {Partial<uPlot.Options>} [extra]
 */
function chart(id, series, data, extra = {}) {
  charts.get(id)?.destroy();
  const box = $(id);
  box.replaceChildren();
  const plot = new uPlot({ width: Math.max(300, box.clientWidth || 600), height: 220, series, ...extra }, data, box);
  charts.set(id, plot);
}

/** @param {any} r */
function drawSales(r) {
  const rows = [...r.per_manager, ...(r.team ? [{ ...r.team, name: t("reports.team"), team: true }] : [])];
  $("sales").replaceChildren(...rows.map((m) => row(
    m.name, m.calls_in, m.calls_out, m.missed, `${m.emails_in}/${m.emails_out}`, `${m.sms_in}/${m.sms_out}`,
    `${m.created} (${money(m.created_sum)})`, `${m.won} (${money(m.won_sum)})`, `${m.lost} (${money(m.lost_sum)})`,
    m.plan_amount == null ? "" : money(m.plan_amount), pct(m.plan_percent))));
  const people = r.per_manager.filter((/** @type {any} */ m) => m.user_id != null);
  const names = people.map((/** @type {any} */ m) => m.name);
  const bars = uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : undefined;
  const thin = uPlot.paths.bars ? uPlot.paths.bars({ size: [0.3, 30] }) : undefined;
  chart("chart-plan", [
    {},
    { label: t("reports.series.plan"), stroke: "#9db4d8", fill: "#9db4d880", paths: bars },
    { label: t("reports.series.won"), stroke: "#0a7a2f", fill: "#0a7a2fcc", paths: thin },
  ], [
    people.map((/** @type {any} */ _m, /** @type {number} */ i) => i),
    people.map((/** @type {any} */ m) => Number(m.plan_amount || 0)),
    people.map((/** @type {any} */ m) => Number(m.won_amount || 0)),
  ], {
    scales: { x: { time: false, range: (_u, lo, hi) => [lo - 0.5, hi + 0.5] } },
    axes: [{ values: (_u, ticks) => ticks.map((v) => names[v] ?? "") , incrs: [1] }, {}],
  });
}

/** @param {any} d */
function drawDay(d) {
  $("day-label").textContent = fmt.day(d.date);
  const rows = [...d.rows, ...(d.total ? [{ ...d.total, name: t("reports.total") }] : [])];
  $("day-rows").replaceChildren(...rows.map((m) => row(
    m.name, `${m.deals_created} (${money(m.deals_created_sum)})`, `${m.deals_cancelled} (${money(m.deals_cancelled_sum)})`,
    m.calls_in_answered, m.calls_in_missed, m.calls_out_answered, m.calls_out_missed,
    `${m.emails_in}/${m.emails_out}`, `${m.sms_in}/${m.sms_out}`,
    `${m.sales_day} (${money(m.sales_day_sum)})`, `${m.sales_month_to_date} (${money(m.sales_month_to_date_sum)})`,
    m.plan_month == null ? "" : `${money(m.plan_month)} (${pct(m.plan_percent_month_to_date)})`)));
}

/** @param {any} hours */
function drawHours(hours) {
  const x = hours.items.map((/** @type {any} */ r) => r.hour);
  const hourAxis = { values: (/** @type {uPlot} */ _u, /** @type {number[]} */ ticks) => ticks.map((v) => `${v}:00`) };
  chart("chart-hours", [
    {},
    { label: t("reports.series.in"), stroke: "#1a5fb4", width: 2 },
    { label: t("reports.series.out"), stroke: "#0a7a2f", width: 2 },
    { label: t("reports.series.missed"), stroke: "#b00020", width: 2 },
  ], [x, hours.items.map((/** @type {any} */ r) => r.calls_in), hours.items.map((/** @type {any} */ r) => r.calls_out),
    hours.items.map((/** @type {any} */ r) => r.missed)], { scales: { x: { time: false } }, axes: [hourAxis, {}] });
  chart("chart-sl", [
    {},
    { label: t("reports.series.sl"), stroke: "#b06000", width: 2, spanGaps: true },
  ], [x, hours.items.map((/** @type {any} */ r) => r.service_level_percent)], {
    scales: { x: { time: false }, y: { range: [0, 100] } }, axes: [hourAxis, {}],
  });
}

/** @param {any} q */
function drawQueues(q) {
  $("queues").replaceChildren(...q.items.map((/** @type {any} */ r) => row(
    r.queue, r.offered, r.answered, r.abandoned, r.short_abandoned, pct(r.abandon_percent),
    pct(r.service_level_percent), r.asa_seconds == null ? "" : fmt.duration(r.asa_seconds), fmt.duration(r.longest_wait_seconds))));
}

/** Contact results per manager (effectiveness: offer sent + sale over contacts less wrong numbers). @param {any} r */
function drawResults(r) {
  // a row without a user (not the total) holds results set by a since-deleted user
  const items = r.items.map((/** @type {any} */ m) => (m.user_id == null ? { ...m, name: t("reports.deletedUser") } : m));
  const rows = [...items, ...(r.total ? [{ ...r.total, name: t("reports.team") }] : [])];
  $("results").replaceChildren(...rows.map((/** @type {any} */ m) => row(
    m.name,
    m.contacts, m.postponed, m.refused, m.offer_sent, m.sale, m.wrong_number, m.other, pct(m.effectiveness_percent),
    m.clients_postponed, m.postponements_per_client_avg == null ? "" : fmt.number(m.postponements_per_client_avg, 2),
    m.postponements_per_client_max)));
}

async function load() {
  $("error").hidden = true;
  const q = query();
  try {
    const [sales, day, hours, sources, lost, presence, results] = await Promise.all([
      api(`/api/reports?${q}`), api(`/api/reports/day?${dayQuery()}`), api(`/api/reports/hourly?${dayQuery()}`),
      api(`/api/reports/lead-sources?${q}`), api(`/api/reports/lost-reasons?${q}`), api(`/api/reports/presence?${q}`),
      api(`/api/reports/results?${q}`),
    ]);
    const lastDay = new Date(Date.parse(sales.to.slice(0, 10)) - 86400000).toISOString();
    $("period").textContent = t("reports.period", { from: fmt.day(sales.from), to: fmt.day(lastDay), zone: sales.from.slice(19) || "UTC" });
    drawSales(sales);
    drawDay(day);
    drawHours(hours);
    $("sources").replaceChildren(...sources.items.map((/** @type {any} */ s) => row(
      s.lead_source, s.clients, `${s.deals} (${money(s.deals_sum)})`, `${s.won} (${money(s.won_sum)})`, pct(s.conversion_percent))));
    $("lost").replaceChildren(...lost.items.map((/** @type {any} */ l) => row(
      l.stage || t("reports.noStage"), l.reason || t("reports.noReason"), l.deals, money(l.sum))));
    $("presence").replaceChildren(...presence.items.map((/** @type {any} */ p) => row(
      p.name, fmt.duration(p.available_seconds), fmt.duration(p.paused_seconds), fmt.duration(p.dnd_seconds), fmt.duration(p.wrapup_seconds))));
    drawResults(results);
  } catch (e) {
    $("error").textContent = e instanceof Error ? e.message : String(e);
    $("error").hidden = false;
    return;
  }
  // queues are the team's: supervisors and admins only (403 for others: the table is hidden)
  try {
    drawQueues(await api(`/api/reports/queues?${q}`));
    $("queues-card").hidden = false;
  } catch (e) {
    $("queues-card").hidden = true;
  }
  document.body.dataset.reportsReady = String(Number(document.body.dataset.reportsReady || 0) + 1);
}

// the socket only for the shell's lights (live link, PBX): the figures are loaded on demand
const shell = await startShell({ socket: { status: true }, deniedKey: "reports.forbidden", titleKey: "reports.title" });
if (shell) {
  shell.socket?.connect();
  $("load").addEventListener("click", () => { load().catch(() => {}); });
  for (const button of document.querySelectorAll("button[data-csv]")) {
    button.addEventListener("click", () => {
      const key = /** @type {HTMLElement} */ (button).dataset.csv || "";
      download(CSV[key]()).catch((e) => { $("error").textContent = String(e.message || e); $("error").hidden = false; });
    });
  }
  load().catch(() => {});
}
