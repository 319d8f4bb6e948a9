// @ts-check
// The supervisors' live board: calls in progress, agents (phone and presence, set from here),
// the queue and queue figures, today's figures, a report.
//
// Loaded once (GET /api/dashboard), then kept by the typed messages of the supervisors' channel,
// each applied in place (board_state.js): no reload per message and no poll. A finished call
// re-reads only the day's tables (GET /api/dashboard/finished); a reconnected socket reloads the
// whole board once (what was missed meanwhile). The clocks tick every second between messages.

import { api } from "./lib/api.js";
import { $, h, input } from "./lib/dom.js";
import * as fmt from "./lib/format.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { player } from "./lib/recordings.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/board.en.js";
import ru from "./lib/i18n/board.ru.js";
import xen from "./lib/i18n/boardx.en.js";
import xru from "./lib/i18n/boardx.ru.js";
import { presenceNow, presenceText } from "./lib/presence.js";
import { applyFinished, applyMessage, fromSnapshot, waiting } from "./board_state.js";

registerCatalogue({ ru, en });
registerCatalogue({ ru: xru, en: xen });

/** A cell whose text is the time since `iso`, kept ticking. @param {string | null | undefined} iso @param {Record<string, unknown>} [attrs] */
const clock = (iso, attrs = {}) => h("td", { ...attrs, class: "tick", "data-since": iso || "", text: fmt.since(iso) });

/** @type {Record<string, string>} */
const STATE_KEYS = {
  free: "board.state.free", ringing: "board.state.ringing", talking: "board.state.talking",
  "off duty": "board.state.offDuty", waiting: "board.state.waiting", queued: "board.state.queued",
};
/** A state the server names, in the user's language (an unknown one as the server said it). @param {string} s */
const stateText = (s) => (STATE_KEYS[s] ? t(STATE_KEYS[s]) : s);
/** An agent's presence now (a wrap-up past its end is over). @param {any} a */
const presenceOf = (a) => presenceNow({ state: a.presence, since: a.presence_since, until: a.wrapup_until }, Date.now());
/** @type {Record<string, string>} */
const STATUS_KEYS = {
  answered: "board.status.answered", missed: "board.status.missed", abandoned: "board.status.abandoned",
  no_answer: "board.status.no_answer", busy: "board.status.busy", failed: "board.status.failed",
};
/** @param {string} s */
const statusText = (s) => (STATUS_KEYS[s] ? t(STATUS_KEYS[s]) : s);

/** @type {import("./board_state.js").Board | null} */
let board = null;
/** @type {{ code: string, name: string }[]} */
let reasons = [];

/** @param {any} c a call in progress */
const callRow = (c) => h("tr", { "data-linkedid": c.linkedid },
  h("td", { text: c.direction === "outbound" ? `→ ${c.client_number || c.did_or_dialled || ""}` : c.caller_number }),
  h("td", { text: c.client_name || "" }),
  h("td", { class: `state-${c.state}`, text: stateText(c.state) }),
  h("td", { text: c.talking || (c.ringing || []).join(", ") || c.agent_extension || "" }),
  clock(c.started_at));

/** The rows on screen by key (linkedid, user_id): a message redraws its rows, not the table. */
/** @type {Map<string, HTMLElement>} */
const callRows = new Map();
/** @type {Map<number, HTMLElement>} */
const agentRows = new Map();

/**
 * Each call's row in place: new calls appended (the board's order is the order calls began),
 * ended ones removed, changed ones replaced. `all`: the whole table afresh (a (re)load).
 * @param {boolean} [all]
 */
function drawCalls(all = false) {
  if (!board) return;
  const body = $("calls");
  if (all) {
    callRows.clear();
    body.replaceChildren(...[...board.calls.values()].map((c) => {
      const row = callRow(c);
      callRows.set(c.linkedid, row);
      return row;
    }));
  } else {
    for (const id of board.touched.calls) {
      const c = board.calls.get(id);
      const old = callRows.get(id);
      if (!c) { old?.remove(); callRows.delete(id); continue; }
      const row = callRow(c);
      if (old) old.replaceWith(row); else body.appendChild(row);
      callRows.set(id, row);
    }
  }
  board.touched.calls.clear();
  $("n-calls").textContent = `(${board.calls.size})`;
  const queue = waiting(board);
  $("n-queue").textContent = `(${queue.length})`;
  $("queue").replaceChildren(...queue.map((c) => {
    const where = c.queue ? `${t("board.inQueue", { queue: c.queue, position: c.position })}, `
      : c.state === "ringing" ? `${t("board.ringingWho", { who: (c.ringing || []).join(", ") })}, ` : "";
    return h("li", {}, `${c.caller_number}${c.client_name ? ` ${c.client_name}` : ""} ${where}`,
      h("span", { class: "tick", "data-since": c.started_at || "", "data-key": "board.waiting", text: t("board.waiting", { time: fmt.since(c.started_at) }) }));
  }));
  drawQueueStats();
}

/** @param {any} a */
function presenceControls(a) {
  const select = h("select", { "data-testid": `reason-${a.user_id}`, "aria-label": t("boardx.pause") },
    ...reasons.map((r) => h("option", { value: r.code, text: r.name })));
  /** @param {string} state */
  const set = (state) => async () => {
    try {
      await api(`/api/presence/${a.user_id}`, { method: "PUT", json: { state, reason: state === "paused" ? select.value : null } });
    } catch (e) {
      $("presence-error").textContent = t("boardx.setFailed", { name: a.name, error: e instanceof Error ? e.message : String(e) });
      $("presence-error").hidden = false;
    }
  };
  return h("td", { class: "presence-set" }, select,
    h("button", { type: "button", class: "secondary", "data-testid": `pause-${a.user_id}`, onclick: set("paused"), text: t("boardx.pause") }),
    h("button", { type: "button", class: "secondary", "data-testid": `dnd-${a.user_id}`, onclick: set("dnd"), text: t("boardx.dnd") }),
    h("button", { type: "button", class: "secondary", "data-testid": `available-${a.user_id}`, onclick: set("available"), text: t("boardx.available") }));
}

/** @param {any} a an agent */
function agentRow(a) {
  const p = presenceOf(a);
  return h("tr", { "data-ext": a.extension, "data-user": a.user_id },
    h("td", { text: a.extension }), h("td", { text: a.name }),
    h("td", { class: `state-${a.state === "off duty" ? "off" : a.state}`, text: stateText(a.state) }),
    h("td", { class: `presence-${p.state}`, "data-testid": `presence-${a.user_id}`, "data-state": p.state, text: presenceText(p.state, a.presence_reason, reasons) }),
    clock(p.since),
    presenceControls(a));
}

/** The agents the messages changed, each row in place; `all`: the whole table afresh. @param {boolean} [all] */
function drawAgents(all = false) {
  if (!board) return;
  if (all) {
    agentRows.clear();
    $("agents").replaceChildren(...board.agents.map((a) => {
      const row = agentRow(a);
      agentRows.set(a.user_id, row);
      return row;
    }));
  } else {
    for (const a of board.agents) {
      if (!board.touched.agents.has(a.user_id)) continue;
      const row = agentRow(a);
      agentRows.get(a.user_id)?.replaceWith(row);
      agentRows.set(a.user_id, row);
    }
  }
  board.touched.agents.clear();
}

function drawQueueStats() {
  if (!board) return;
  const live = waiting(board).filter((c) => c.queue);
  /** @type {Map<string, any>} */
  const rows = new Map(board.queueStats.map((q) => [q.queue, { ...q }]));
  for (const c of live) if (!rows.has(c.queue)) rows.set(c.queue, { queue: c.queue, offered: 0, answered: 0, abandoned: 0 });
  $("queue-stats").replaceChildren(...[...rows.values()].map((q) => {
    const mine = live.filter((c) => c.queue === q.queue);
    const oldest = mine.map((c) => c.queued_at).filter(Boolean).sort()[0];
    return h("tr", { "data-queue": q.queue },
      h("td", { text: q.queue }), h("td", { text: mine.length }), clock(oldest),
      h("td", { text: q.offered }), h("td", { text: q.answered }),
      h("td", { text: q.abandoned + (q.short_abandoned ? ` (+${q.short_abandoned})` : "") }),
      h("td", { text: q.service_level_percent == null ? "" : `${fmt.number(q.service_level_percent, 1)}%` }),
      h("td", { text: q.asa_seconds == null ? "" : fmt.duration(q.asa_seconds) }));
  }));
}

function drawFinished() {
  if (!board) return;
  // each missed call: the client, a link to their card (the workspace opens it), called back
  $("missed").replaceChildren(...board.missed.map((m) => h("li", { "data-id": m.id, "data-client": m.client_id, class: m.called_back ? "called-back" : "" },
    t("board.missedLine", { phone: m.phone, time: fmt.time(m.at), who: [...new Set(m.agents_rung || [])].join(", ") || t("board.nobody") }),
    " — ",
    h("a", { href: `/operator?client=${encodeURIComponent(m.client_id)}`, "data-testid": `missed-client-${m.id}`, text: m.client_name || t("boardx.openCard") }),
    " · ",
    h("span", { "data-testid": `called-back-${m.id}`, "data-called-back": m.called_back ? "1" : "0",
      text: m.called_back ? t("boardx.calledBackAt", { time: fmt.time(m.called_back_at) }) : t("boardx.notCalledBack") }))));
  $("recent").replaceChildren(...board.recent.map((c) => h("tr", { "data-id": c.id },
    h("td", { text: fmt.time(c.at) }),
    h("td", { text: c.phone }),
    h("td", { text: `${c.direction === "in" ? t("board.dirIn") : t("board.dirOut")}, ${statusText(c.status)}${c.talk_seconds ? `, ${fmt.duration(c.talk_seconds)}` : ""}` }),
    h("td", { text: c.agent_extension || "" }),
    h("td", {}, !c.recording ? null : c.recording.empty ? h("span", { class: "rec-note", text: t("board.noAudio") })
      : h("button", { type: "button", class: "secondary", "data-play": c.id, "data-testid": `play-${c.id}`, text: t("board.play") })))));
  $("today").replaceChildren(...board.today.map((f) => h("tr", {},
    h("td", { text: f.name }), h("td", { text: f.calls_in }), h("td", { text: f.calls_out }),
    h("td", { text: f.answered }), h("td", { text: f.missed }), h("td", { text: fmt.duration(f.talk_seconds) }))));
  drawQueueStats();
}

function drawAll() {
  if (!board) return;
  $("updated").textContent = t("board.updated", { time: fmt.time(board.at) });
  drawCalls(true);
  drawAgents(true);
  drawFinished();
  document.body.dataset.boardReady = "1";
}

/** Only the clocks move between messages: their text, nothing else redrawn. */
function tick() {
  for (const node of document.querySelectorAll(".tick")) {
    const el = /** @type {HTMLElement} */ (node);
    const text = fmt.since(el.dataset.since);
    const shown = el.dataset.key ? t(el.dataset.key, { time: text }) : text;
    if (el.textContent !== shown) el.textContent = shown; // most clocks: one change a second
  }
  // a wrap-up ends by the clock: redraw the agents when one is over
  if (!board) return;
  let over = false;
  for (const a of board.agents) {
    const p = presenceOf(a);
    if (!p.expired) continue;
    a.presence = p.state; a.presence_since = p.since; a.wrapup_until = null;
    board.touched.agents.add(a.user_id);
    over = true;
  }
  if (over) drawAgents();
}

async function load() {
  const b = await api("/api/dashboard");
  board = fromSnapshot(b);
  drawAll();
}

/** @type {ReturnType<typeof setTimeout> | null} */
let finishedTimer = null;
let finishedAt = 0;
/** The day's tables re-read after a finished call: at most once a second (a call ends every
 * second or so in a busy contact centre: one read per call would be the service's load). */
function finishedSoon() {
  if (finishedTimer) return;
  finishedTimer = setTimeout(async () => {
    finishedTimer = null;
    finishedAt = Date.now();
    try {
      const part = await api("/api/dashboard/finished");
      if (board) { applyFinished(board, part); board.at = part.at; drawFinished(); }
    } catch (e) { /* the next finished call or a reload catches up */ }
  }, Math.max(200, 1000 - (Date.now() - finishedAt)));
}

/** What the messages since the last drawing changed: drawn once per frame, not per message
 * (under a burst of calls hundreds of messages a second would each redraw the tables). */
const dirty = new Set();
let drawScheduled = false;
function flush() {
  drawScheduled = false;
  if (dirty.has("calls")) drawCalls();
  if (dirty.has("agents")) drawAgents();
  if (dirty.has("finished")) finishedSoon();
  if (dirty.size && board) $("updated").textContent = t("board.updated", { time: fmt.time(board.at) });
  dirty.clear();
}

/** @param {import("./lib/ws.js").Frame} msg */
function onMessage(msg) {
  if (!board) { pending.push(msg); return; }
  const changed = applyMessage(board, msg);
  if (!changed.size) return;
  if (msg.at) board.at = msg.at;
  for (const part of changed) dirty.add(part);
  if (!drawScheduled) {
    drawScheduled = true;
    // the next frame, or soon if the tab is hidden (frames stop there)
    const timer = setTimeout(flush, 100);
    requestAnimationFrame(() => { clearTimeout(timer); if (drawScheduled) flush(); });
  }
}
/** @type {import("./lib/ws.js").Frame[]} */
const pending = [];

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
  shell.socket?.on("*", (msg) => onMessage(msg));
  // a reconnect after the first: what happened meanwhile may be more than replays say
  let opened = 0;
  shell.socket?.onState((info) => {
    if (info.state !== "open") return;
    opened += 1;
    if (opened > 1) load().catch(() => {});
  });
  shell.socket?.connect();
  $("recent").addEventListener("click", (ev) => {
    const button = /** @type {HTMLElement | null} */ (ev.target instanceof Element ? ev.target.closest("button[data-play]") : null);
    if (!button) return;
    $("player").replaceChildren(player(Number(button.dataset.play), { empty: false }, true));
  });
  $("rep-load").addEventListener("click", () => { loadReport().catch(() => {}); });
  api("/api/presence/reasons").then((r) => { reasons = r; drawAgents(true); }).catch(() => {});
  // frames that came while the board loaded are applied on top of it, in order
  load().then(() => { for (const msg of pending.splice(0)) onMessage(msg); }).catch(() => {});
  loadReport().catch(() => {});
  setInterval(tick, 1000);
}
