// @ts-check
// The open card: the client (edit, call), their open deal (stage), tasks, SMS and email, and
// the timeline of communications with each call's recording.

import { api, items } from "../lib/api.js";
import { $, fillList, h, input, setStatus } from "../lib/dom.js";
import * as fmt from "../lib/format.js";
import { named, t } from "../lib/i18n.js";
import { player } from "../lib/recordings.js";
import { markPanel, renderPop } from "./pop.js";
import { S, savePop } from "./state.js";
import { showChannels } from "../lib/delivery.js";
import { stageMoveBody } from "./ask.js";
import { commentsOf, keepComments } from "./comments.js";
import { restoreDrafts, stashDrafts } from "./drafts.js";
import { resultOf } from "./results.js";

/** datetime-local wants local wall time without zone. @param {Date} date */
export function localInputValue(date) {
  /** @param {number} n */
  const p = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}:${p(date.getMinutes())}`;
}

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

/**
 * A client has at most one open callback (a missed call makes one by itself): move that one
 * to the new time rather than fail on a second.
 * @param {number} clientId
 * @param {number | null} dealId
 * @param {string} title
 * @param {string} dueIso
 */
export async function setCallback(clientId, dealId, title, dueIso) {
  const open = await api(`/api/tasks?client_id=${clientId}&open_only=true`);
  const existing = open.find((/** @type {any} */ task) => task.kind === "callback");
  if (existing) {
    return api(`/api/tasks/${existing.id}`, { method: "PATCH", json: { title, due_at: dueIso } });
  }
  return api("/api/tasks", { method: "POST", json: {
    title, kind: "callback", due_at: dueIso, client_id: clientId, deal_id: dealId,
  } });
}

/**
 * @param {number} clientId
 * @param {number | null} dealId
 * @param {{ focusName?: boolean }} [opts]
 */
export async function openClient(clientId, dealId, opts) {
  // what was typed on the card on screen stays with that client (given back on return)
  stashDrafts();
  S.panel = { clientId, dealId, client: null, deal: null };
  $("panel").hidden = false;
  markPanel();
  await refreshPanel();
  if (S.panel && S.panel.clientId === clientId) restoreDrafts(clientId);
  markPanel();
  if (opts && opts.focusName) {
    const name = input("client-name");
    name.focus();
    name.select();
  }
}

export async function refreshPanel() {
  if (!S.panel) return;
  await Promise.all([loadClient(), loadDeal(), loadTimeline(), loadTasks()]);
}

async function loadClient() {
  const panel = S.panel;
  if (!panel) return;
  try {
    const c = await api(`/api/clients/${panel.clientId}`);
    if (S.panel !== panel) return;
    panel.client = c;
    $("client-id").textContent = `#${c.id}`;
    input("client-name").value = c.name || "";
    input("client-company").value = c.company || "";
    input("client-phones").value = (c.phones || []).map((/** @type {any} */ p) => p.number).join("\n");
    input("client-emails").value = (c.emails || []).join("\n");
    input("client-notes").value = c.notes || "";
    setStatus($("client-status"), "");
  } catch (e) { setStatus($("client-status"), message(e), true); }
}

export async function loadDeal() {
  const panel = S.panel;
  if (!panel) return;
  try {
    let deal = null;
    if (panel.dealId) deal = await api(`/api/deals/${panel.dealId}`);
    else {
      const open = await api(`/api/deals?client_id=${panel.clientId}&open_only=true&limit=1`);
      deal = open[0] || null;
    }
    if (S.panel !== panel) return;
    panel.deal = deal;
    panel.dealId = deal ? deal.id : null;
    $("deal-id").textContent = deal ? `#${deal.id}` : "";
    $("deal-title").textContent = deal ? deal.title : t("op.noDeal");
    $("deal-amount").textContent = deal ? fmt.money(deal.amount, deal.currency || "RUB", { decimals: 0 }) : "";
    const select = /** @type {HTMLSelectElement} */ ($("deal-stage"));
    select.replaceChildren(...S.stages.map((s) => h("option", { value: String(s.id), text: s.name })));
    if (deal) select.value = String(deal.stage_id);
    $("stage-form").hidden = !deal;
    setStatus($("deal-status"), "");
  } catch (e) { setStatus($("deal-status"), message(e), true); }
}

// A call's player survives the timeline being redrawn (a new call, a note): the same node is
// put back, so listening is not cut short.
/** @type {Map<number, HTMLElement>} communication id -> the recording's element */
const players = new Map();

/** @param {any} c */
function recordingOf(c) {
  if (!c.recording) return null;
  let node = players.get(c.id);
  if (!node) players.set(c.id, (node = player(c.id, c.recording)));
  return node;
}

export async function loadTimeline() {
  const panel = S.panel;
  if (!panel) return;
  try {
    const data = await api(`/api/clients/${panel.clientId}/communications?limit=50`);
    if (S.panel !== panel) return;
    const shown = items(data);
    fillList($("timeline"), shown.map(timelineItem), t("op.noComms"));
    // players of calls no longer on the card are let go
    const ids = new Set(shown.map((c) => c.id));
    for (const id of players.keys()) if (!ids.has(id)) players.delete(id);
    keepComments(ids);
  } catch (e) { fillList($("timeline"), [], message(e)); }
}

/** @param {any} c a communication */
function timelineItem(c) {
  /** @type {(Node | string | null)[]} */
  let what;
  if (c.kind === "call") {
    const dir = c.direction === "in" ? t("op.tl.inbound") : t("op.tl.outbound");
    const bits = [named("op.st", c.status)];
    if (c.talk_seconds) bits.push(t("op.tl.talk", { d: fmt.duration(c.talk_seconds) }));
    if (c.hold_seconds) bits.push(t("op.tl.hold", { d: fmt.duration(c.hold_seconds) }));
    if (c.ring_seconds != null) bits.push(t("op.tl.ring", { d: fmt.duration(c.ring_seconds) }));
    if (c.agent_extension) bits.push(t("op.tl.ext", { ext: c.agent_extension }));
    if (c.phone) bits.push(c.phone);
    what = [h("span", { class: "kind", text: dir }), " ", h("span", { class: "muted", text: bits.join(" · ") }), recordingOf(c)];
  } else if (c.kind === "note") {
    const result = c.extra && c.extra.result;
    what = [h("span", { class: "kind", text: t("op.tl.note") }), result ? h("span", { class: "badge", text: ` ${result}` }) : null,
      h("div", { class: "tl-body", text: c.body || "" })];
  } else {
    // an inbound email's From is only a claim: say so unless the relay verified it
    const unverified = c.sender_verified === false
      ? h("span", { class: "badge unverified", "data-testid": "unverified", title: t("op.unverifiedTitle"), text: t("op.unverifiedSender") })
      : null;
    const kind = c.kind === "sms" ? "SMS" : String(c.kind).toUpperCase();
    what = [h("span", { class: "kind", text: t("op.tl.message", { kind, dir: c.direction === "in" ? t("op.dir.in") : t("op.dir.out") }) }), " ",
      h("span", { class: "muted", text: named("op.st", c.status) }), unverified ? " " : null, unverified,
      c.subject ? h("div", { text: c.subject }) : null,
      c.body ? h("div", { class: "tl-body", text: c.body }) : null];
  }
  return h("li", { class: "tl-item", "data-kind": c.kind, "data-status": c.status, "data-direction": c.direction, "data-id": String(c.id) },
    h("span", { class: "tl-when", text: fmt.when(c.occurred_at) }), h("div", { class: "tl-what" }, what, c.kind === "call" ? resultOf(c.id) : null, commentsOf(c.id)));
}

export async function loadTasks() {
  const panel = S.panel;
  if (!panel) return;
  try {
    const rows = await api(`/api/tasks?client_id=${panel.clientId}&open_only=true`);
    if (S.panel !== panel) return;
    fillList($("tasks"), rows.map((/** @type {any} */ task) => h("li", { "data-kind": task.kind, class: task.overdue ? "error" : "" },
      task.title, task.due_at ? h("span", { class: "muted", text: ` · ${fmt.when(task.due_at)}` }) : null)), t("op.noOpenTasks"));
  } catch (e) { fillList($("tasks"), [], message(e)); }
}

/** @param {string} text */
const lines = (text) => text.split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean);

/** @param {SubmitEvent} ev */
async function saveClient(ev) {
  ev.preventDefault();
  const panel = S.panel;
  if (!panel) return;
  /** @type {Record<string, string | null>} */
  const labels = Object.fromEntries(((panel.client && panel.client.phones) || []).map((/** @type {any} */ p) => [p.number, p.label]));
  const body = {
    name: input("client-name").value.trim(),
    company: input("client-company").value.trim() || null,
    notes: input("client-notes").value,
    phones: lines(input("client-phones").value).map((n) => ({ number: n, label: labels[n] || null })),
    emails: lines(input("client-emails").value),
  };
  try {
    const c = await api(`/api/clients/${panel.clientId}`, { method: "PATCH", json: body });
    panel.client = c;
    setStatus($("client-status"), t("op.saved"));
    // keep the pop in step with the card it shows
    if (S.pop && S.pop.card && S.pop.card.client && S.pop.card.client.id === c.id) {
      Object.assign(S.pop.card.client, {
        name: c.name, company: c.company, phones: c.phones.map((/** @type {any} */ p) => p.number), emails: c.emails, notes: c.notes,
      });
      savePop();
      renderPop();
    }
  } catch (e) { setStatus($("client-status"), message(e), true); }
}

/** @param {SubmitEvent} ev */
async function moveStage(ev) {
  ev.preventDefault();
  const panel = S.panel;
  if (!panel || !panel.dealId) return;
  const dealId = panel.dealId;
  const stageId = Number(/** @type {HTMLSelectElement} */ ($("deal-stage")).value);
  const stage = S.stages.find((s) => s.id === stageId) || { id: stageId, name: "" };
  const stageName = stage.name;
  try {
    // Lost needs its reason, Won an amount when the deal has none: asked, never guessed
    const body = await stageMoveBody(panel.deal, stage);
    if (!body) {
      if (panel.deal) /** @type {HTMLSelectElement} */ ($("deal-stage")).value = String(panel.deal.stage_id);
      return;
    }
    const d = await api(`/api/deals/${dealId}/stage`, { method: "POST", json: body });
    if (S.panel === panel) panel.deal = d;
    if (S.panel === panel) $("deal-amount").textContent = fmt.money(d.amount, d.currency || "RUB", { decimals: 0 });
    setStatus($("deal-status"), t("op.movedTo", { stage: d.stage || stageName }));
    if (S.pop && S.pop.card && S.pop.card.deal && S.pop.card.deal.id === d.id) {
      S.pop.card.deal.stage = d.stage || stageName;
      S.pop.card.deal.stage_id = stageId;
      savePop();
      renderPop();
    }
  } catch (e) { setStatus($("deal-status"), message(e), true); }
}

/** @param {SubmitEvent} ev */
async function addCallback(ev) {
  ev.preventDefault();
  const panel = S.panel;
  if (!panel) return;
  const name = panel.client ? panel.client.name : t("op.clientFallback");
  try {
    await setCallback(panel.clientId, panel.dealId, input("task-title").value.trim() || t("op.callBackName", { name }),
      new Date(input("task-due").value).toISOString());
    setStatus($("task-status"), t("op.callbackSet"));
    input("task-title").value = "";
    loadTasks();
  } catch (e) { setStatus($("task-status"), message(e), true); }
}

/**
 * SMS and email from the card: queued now, sent by the server; the timeline shows the status.
 * @param {"sms" | "email"} path
 * @param {Record<string, string>} json
 * @param {() => void} done
 */
async function sendMessage(path, json, done) {
  const panel = S.panel;
  if (!panel) return;
  try {
    const c = await api(`/api/clients/${panel.clientId}/${path}`, { method: "POST", json });
    if (!S.failedMessages.has(c.id)) {
      setStatus($("message-status"), t(path === "sms" ? "op.smsQueued" : "op.emailQueued", { to: c.phone || c.email }));
    }
    done();
    loadTimeline();
  } catch (e) { setStatus($("message-status"), message(e), true); }
}

/**
 * A note on the card: it goes to the client whose card it was typed on (the card's fields are
 * that client's own: switching cards puts them aside), captured before the request.
 * @param {SubmitEvent} ev
 */
async function saveNote(ev) {
  ev.preventDefault();
  const panel = S.panel;
  if (!panel) return;
  const text = input("note-text");
  const body = text.value.trim();
  if (!body) return;
  try {
    await api("/api/notes", { method: "POST", json: { client_id: panel.clientId, deal_id: panel.dealId || null, body } });
    if (S.panel === panel) {
      text.value = "";
      setStatus($("note-status"), t("op.saved"));
      loadTimeline();
    }
    markPanel();
  } catch (e) { setStatus($("note-status"), message(e), true); }
}

/** Click-to-call: the operator's phone rings first, then the client's (logged on this deal). */
async function callClient() {
  const panel = S.panel;
  if (!panel) return;
  const failuresBefore = S.originateFailures;
  const button = /** @type {HTMLButtonElement} */ ($("client-call"));
  button.disabled = true; // one call per click: a second click while this one is placed waits
  try {
    const r = await api("/api/calls/originate", {
      method: "POST", json: { client_id: panel.clientId, deal_id: panel.dealId || null },
    });
    // the PBX may refuse (and the socket say so) before this answer arrives: keep the failure
    if (S.originateFailures === failuresBefore) {
      setStatus($("client-status"), t("op.ringingYourPhone", { ext: r.extension, number: r.number }));
    }
  } catch (e) {
    setStatus($("client-status"), message(e), true);
  } finally {
    button.disabled = false;
  }
}

export function initPanel() {
  // which of SMS and email work here, said beside their Send buttons before anyone presses them
  showChannels({ sms: /** @type {HTMLButtonElement} */ ($("sms-send")), email: /** @type {HTMLButtonElement} */ ($("email-send")) });
  $("client-form").addEventListener("submit", saveClient);
  $("stage-form").addEventListener("submit", moveStage);
  $("task-form").addEventListener("submit", addCallback);
  $("sms-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendMessage("sms", { text: input("sms-text").value }, () => { input("sms-text").value = ""; });
  });
  $("email-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sendMessage("email", { subject: input("email-subject").value, body: input("email-body").value },
      () => { input("email-subject").value = ""; input("email-body").value = ""; });
  });
  $("client-call").onclick = callClient;
  $("note-form").addEventListener("submit", saveNote);
  // typing marks the card as being edited: a pop then shows beside it instead of replacing it
  $("panel").addEventListener("input", () => markPanel());
  input("task-due").value = localInputValue(new Date(Date.now() + 60 * 60 * 1000));
}
