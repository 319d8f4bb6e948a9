// @ts-check
// The supervisors' live board: calls in progress, agents, the queue, today's figures, a report.
// The supervisors' channel says when something changed (a refresh soon after); a slow poll
// covers a lost socket; the "since" clocks tick between refreshes.

import { api } from "./lib/api.js";
import { $, h, input } from "./lib/dom.js";
import * as fmt from "./lib/format.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { player } from "./lib/recordings.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/board.en.js";
import ru from "./lib/i18n/board.ru.js";

registerCatalogue({ ru, en });

const POLL_MS = 3000;

/** @param {string | null | undefined} iso */
const since = (iso) => (iso ? fmt.duration((Date.now() - Date.parse(iso)) / 1000) : "");

/** @type {Record<string, string>} */
const STATE_KEYS = {
  free: "board.state.free", ringing: "board.state.ringing", talking: "board.state.talking",
  "off duty": "board.state.offDuty", waiting: "board.state.waiting", queued: "board.state.queued",
};
/** A state the server names, in the user's language (an unknown one as the server said it). @param {string} s */
const stateText = (s) => (STATE_KEYS[s] ? t(STATE_KEYS[s]) : s);
/** @type {Record<string, string>} */
const STATUS_KEYS = {
  answered: "board.status.answered", missed: "board.status.missed", abandoned: "board.status.abandoned",
  no_answer: "board.status.no_answer", busy: "board.status.busy", failed: "board.status.failed",
};
/** @param {string} s */
const statusText = (s) => (STATUS_KEYS[s] ? t(STATUS_KEYS[s]) : s);

/** @param {any} b the GET /api/dashboard answer */
function render(b) {
  $("updated").textContent = t("board.updated", { time: fmt.time(b.at) });
  $("n-calls").textContent = `(${b.calls.length})`;
  $("calls").replaceChildren(...b.calls.map((/** @type {any} */ c) => h("tr", {},
    h("td", { text: c.direction === "outbound" ? `→ ${c.client_number || c.did_or_dialled || ""}` : c.caller_number }),
    h("td", { text: c.client_name || "" }),
    h("td", { class: `state-${c.state}`, text: stateText(c.state) }),
    h("td", { text: c.talking || (c.ringing || []).join(", ") || c.agent_extension || "" }),
    h("td", { text: since(c.started_at) }))));
  $("agents").replaceChildren(...b.agents.map((/** @type {any} */ a) => h("tr", { "data-ext": a.extension },
    h("td", { text: a.extension }), h("td", { text: a.name }),
    h("td", { class: `state-${a.state === "off duty" ? "off" : a.state}`, text: stateText(a.state) }))));
  $("n-queue").textContent = `(${b.queue.length})`;
  $("queue").replaceChildren(...b.queue.map((/** @type {any} */ c) => {
    const where = c.queue ? `${t("board.inQueue", { queue: c.queue, position: c.position })}, `
      : c.state === "ringing" ? `${t("board.ringingWho", { who: (c.ringing || []).join(", ") })}, ` : "";
    return h("li", {}, `${c.caller_number}${c.client_name ? ` ${c.client_name}` : ""} ${where}${t("board.waiting", { time: since(c.started_at) })}`);
  }));
  $("missed").replaceChildren(...b.missed_today.map((/** @type {any} */ m) => h("li", {}, t("board.missedLine", {
    phone: m.phone, time: fmt.time(m.at), who: [...new Set(m.agents_rung || [])].join(", ") || t("board.nobody"),
  }))));
  // the list is redrawn every second: the player lives above it, so listening goes on
  $("recent").replaceChildren(...(b.recent_calls || []).map((/** @type {any} */ c) => h("tr", { "data-id": c.id },
    h("td", { text: fmt.time(c.at) }),
    h("td", { text: c.phone }),
    h("td", { text: `${c.direction === "in" ? t("board.dirIn") : t("board.dirOut")}, ${statusText(c.status)}${c.talk_seconds ? `, ${fmt.duration(c.talk_seconds)}` : ""}` }),
    h("td", { text: c.agent_extension || "" }),
    h("td", {}, !c.recording ? null : c.recording.empty ? h("span", { class: "rec-note", text: t("board.noAudio") })
      : h("button", { type: "button", class: "secondary", "data-play": c.id, "data-testid": `play-${c.id}`, text: t("board.play") })))));
  $("today").replaceChildren(...b.today.map((/** @type {any} */ f) => h("tr", {},
    h("td", { text: f.name }), h("td", { text: f.calls_in }), h("td", { text: f.calls_out }),
    h("td", { text: f.answered }), h("td", { text: f.missed }), h("td", { text: fmt.duration(f.talk_seconds) }))));
}

/** @type {any} */
let last = null;
async function refresh() {
  try { render((last = await api("/api/dashboard"))); } catch (e) { /* next tick */ }
}

async function loadReport() {
  const q = new URLSearchParams();
  if (input("rep-from").value) q.set("date_from", input("rep-from").value);
  if (input("rep-to").value) q.set("date_to", input("rep-to").value);
  let r;
  try {
    r = await api(`/api/reports?${q}`);
  } catch (e) {
    $("report-error").textContent = e instanceof Error ? e.message : String(e);
    $("report-error").hidden = false;
    // no figures rather than the last report's, which would read as this range's
    $("report").replaceChildren();
    $("report-period").textContent = "";
    $("sources").textContent = "";
    return;
  }
  $("report-error").hidden = true;
  // [from, to) in the company's time zone; shown as the days it covers
  const lastDay = new Date(Date.parse(r.to.slice(0, 10)) - 86400000).toISOString();
  $("report-period").textContent = t("board.period", {
    from: fmt.day(r.from), to: fmt.day(lastDay), zone: r.from.slice(19) || "UTC",
  });
  const rows = [...r.per_manager, ...(r.team ? [{ ...r.team, name: t("board.team") }] : [])];
  /** @param {number | string} v */
  const money = (v) => fmt.money(v, null);
  $("report").replaceChildren(...rows.map((m) => h("tr", {},
    h("td", { text: m.name }), h("td", { text: m.calls_in }), h("td", { text: m.calls_out }),
    h("td", { text: m.emails_out + m.emails_in }),
    h("td", { text: `${m.created} (${money(m.created_sum)})` }),
    h("td", { text: `${m.won} (${money(m.won_sum)})` }),
    h("td", { text: `${m.lost} (${money(m.lost_sum)})` }))));
  const sources = (r.lead_sources || []).map((/** @type {any} */ s) => `${s.lead_source}: ${s.deals}`).join(" · ");
  $("sources").textContent = sources ? t("board.sources", { list: sources }) : "";
}

const shell = await startShell({ socket: { status: true }, deniedKey: "board.forbidden", titleKey: "board.title" });
if (shell) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  const soon = () => { if (!timer) timer = setTimeout(() => { timer = null; refresh(); }, 150); };
  shell.socket?.on("*", soon);
  shell.socket?.connect();
  $("recent").addEventListener("click", (ev) => {
    const button = /** @type {HTMLElement | null} */ (ev.target instanceof Element ? ev.target.closest("button[data-play]") : null);
    if (!button) return;
    $("player").replaceChildren(player(Number(button.dataset.play), { empty: false }, true));
  });
  $("rep-load").addEventListener("click", () => { loadReport().catch(() => {}); });
  refresh();
  loadReport().catch(() => {});
  setInterval(refresh, POLL_MS);
  setInterval(() => { if (last) render(last); }, 1000);
}
