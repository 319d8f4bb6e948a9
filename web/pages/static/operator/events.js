// @ts-check
// What the socket brings, applied to the workspace: pops, call states, tasks, messages.

import { $, setStatus } from "../lib/dom.js";
import { named, t } from "../lib/i18n.js";
import { beep, desktopNotify } from "./alerts.js";
import { answeredElsewhere, callFacts, callNumber, trackCall } from "./calls.js";
import { loadTasks, loadTimeline, openClient } from "./panel.js";
import { renderPop, renderPopState, resetResultForm } from "./pop.js";
import { hasUnsavedEdits } from "./drafts.js";
import { loadMissed } from "./missed.js";
import { ALERT_MAX_AGE_MS, S, diag, savePop } from "./state.js";
import { deliveryError } from "../lib/delivery.js";

/**
 * @typedef {import("../lib/ws.js").Frame} Frame
 * @typedef {import("../lib/ws.js").FrameInfo} FrameInfo
 */

/** @type {{ linkedid: string | null, number: string } | null} the outbound call the card's status speaks of */
let outbound = null;

/** @param {Frame} msg @param {FrameInfo} info */
export function onEvent(msg, info) {
  const replayed = info.replayed;
  const p = msg.payload || {};
  const linkedid = p.linkedid || (p.call && p.call.linkedid) || null;
  diag.log.push({ type: msg.type, seq: msg.seq, linkedid, at: Date.now(), replayed,
    answered_at: (p.call && p.call.answered_at) || null });
  if (diag.log.length > 500) diag.log.splice(0, 250);
  // pops are for this operator's phone; a staff socket also gets the supervisors' board
  const mine = !msg.channel || !msg.type.startsWith("call.") || msg.channel === `ext:${S.user.extension}`;
  if (!mine) return;
  switch (msg.type) {
    case "call.ringing": return onRinging(msg, p, linkedid, replayed);
    // a new caller's card, committed after the pop that said it was on its way
    case "call.card_opened": return onCardOpened(p, linkedid, replayed);
    // ...or that it could not be opened: the pop stops saying it is on its way
    case "call.card_failed": return onCardFailed(linkedid);
    // a call this phone placed (click-to-call or dialled by hand) is under way
    case "call.started":
      if (p.call && p.call.direction === "outbound") onCallState(linkedid, "calling", p);
      return;
    case "call.answered": return onCallState(linkedid, "answered", p);
    // this phone stopped ringing (the caller went on to the queue or someone else)
    case "call.ring_ended": return onCallState(linkedid, "missed", p);
    case "call.transferred": return onCallState(linkedid, "transferred", p);
    case "call.ended": return onEnded(linkedid, p, replayed);
    case "originate.failed":
      S.originateFailures += 1;
      setStatus($("client-status"), t("op.callFailed", { reason: p.reason || t("op.noReason") }), true);
      return;
    case "task.created":
      if (S.panel && p.client_id === S.panel.clientId) loadTasks();
      loadMissed();
      return;
    case "task.updated":
    case "task.done":
      loadMissed();
      return;
    case "message.received": { // SMS/email from a client of mine: say so, refresh their timeline
      const who = `${p.client_name || p.from || t("op.aClient")}${p.sender_verified === false ? ` (${t("op.unverifiedSender")})` : ""}`;
      setStatus($("message-status"), t(p.kind === "sms" ? "op.newSms" : "op.newEmail", { who, text: p.subject || p.preview || "" }));
      if (S.panel && p.client_id === S.panel.clientId) loadTimeline();
      return;
    }
    case "message.status":
      if (S.panel && p.client_id === S.panel.clientId) loadTimeline();
      if (p.status === "failed") {
        S.failedMessages.add(p.communication_id);
        setStatus($("message-status"), t("op.notSent", { to: p.to || t("op.theClient"), error: deliveryError(p.error) }), true);
      }
      return;
    default:
      return;
  }
}

/**
 * @param {Frame} msg
 * @param {any} p
 * @param {string | null} linkedid
 * @param {boolean} replayed
 */
function onRinging(msg, p, linkedid, replayed) {
  const known = S.calls.find((c) => c.linkedid === linkedid);
  if (known && known.state === "ended") return; // a late replay of a call already over
  const call = p.call || {};
  const card = p.card || {};
  const client = card.client || null;
  const number = callNumber(call);
  const already = !!S.pop && S.pop.linkedid === linkedid;
  if (!already) resetResultForm(); // a note typed for the last caller must not land on this one
  S.pop = {
    linkedid,
    state: "ringing",
    call,
    card,
    new_client: !!p.new_client,
    new_caller: !!p.new_caller && !client,
    number,
    at: msg.at || new Date().toISOString(),
    shownAt: Date.now(),
  };
  savePop();
  renderPop();
  if (linkedid && !(linkedid in diag.popRenderedAt)) {
    diag.popRenderedAt[linkedid] = Date.now();
    diag.popStateAtRender[linkedid] = $("pop").dataset.state;
  }
  trackCall(linkedid, { state: "ringing", name: client ? client.name : null, number, at: call.started_at || msg.at,
    clientId: client ? client.id : null, dealId: card.deal ? card.deal.id : null });
  const fresh = !msg.at || Date.now() - Date.parse(msg.at) < ALERT_MAX_AGE_MS;
  if (fresh && !already) {
    const alert = () => {
      if (!S.pop || S.pop.linkedid !== linkedid || S.pop.state !== "ringing") return;
      beep();
      const who = client ? [client.name, client.company].filter(Boolean).join(", ") : number || t("op.unknownNumber");
      desktopNotify(p.new_client || p.new_caller ? t("op.incomingNew") : t("op.incomingCall"), who, linkedid || "call");
    };
    // live: at once; replayed after a reconnect: only if the rest of the replay leaves it ringing
    if (replayed) setTimeout(alert, 300);
    else alert();
  }
  // a new caller's card opens by itself only when no card is being edited: else the pop waits beside it
  if (p.new_client && client && !already && !replayed && !hasUnsavedEdits()) openClient(client.id, card.deal ? card.deal.id : null, { focusName: true });
}

/**
 * The card a new caller's pop was waiting for (or the open deal a card lacked): the pop fills
 * in, and a new client's card opens beside it as it would have with the pop.
 * @param {any} p
 * @param {string | null} linkedid
 * @param {boolean} replayed
 */
function onCardOpened(p, linkedid, replayed) {
  const card = p.card || {};
  const client = card.client || null;
  if (!client) return;
  trackCall(linkedid, { name: client.name, clientId: client.id, dealId: card.deal ? card.deal.id : null });
  if (!S.pop || S.pop.linkedid !== linkedid) return;
  const waited = !S.pop.card || !S.pop.card.client;
  S.pop.card = card;
  S.pop.new_caller = false;
  S.pop.new_client = S.pop.new_client || !!p.new_client;
  if (p.call) S.pop.call = Object.assign({}, S.pop.call, p.call);
  savePop();
  renderPop();
  if (p.new_client && waited && !replayed && !hasUnsavedEdits()) openClient(client.id, card.deal ? card.deal.id : null, { focusName: true });
}

/**
 * The card a new caller's pop was waiting for could not be opened.
 * @param {string | null} linkedid
 */
function onCardFailed(linkedid) {
  if (!S.pop || S.pop.linkedid !== linkedid || !S.pop.new_caller) return;
  S.pop.new_caller = false;
  S.pop.card_failed = true;
  savePop();
  renderPop();
}

/**
 * The card the call's log opened, now open beside its pop: the pop shows it as a pop card.
 * @param {string | null} linkedid
 */
function popTakesPanel(linkedid) {
  const panel = S.panel;
  if (!S.pop || S.pop.linkedid !== linkedid || !S.pop.card_failed || !panel || !panel.client) return;
  const c = panel.client;
  const d = panel.deal;
  S.pop.card = {
    client: { id: c.id, name: c.name, company: c.company, phones: (c.phones || []).map((/** @type {any} */ x) => x.number) },
    deal: d ? { id: d.id, title: d.title, stage: d.stage, amount: d.amount, currency: d.currency } : null,
  };
  S.pop.card_failed = false;
  S.pop.new_client = true;
  savePop();
  renderPop();
}

/**
 * @param {string | null} linkedid
 * @param {string} state
 * @param {any} p
 */
function onCallState(linkedid, state, p) {
  trackCall(linkedid, Object.assign(callFacts(p.call), { state }));
  if (p.call && p.call.direction === "outbound" && (state === "calling" || state === "answered")) {
    // the click-to-call's "Ringing your phone…" is over: say where the call stands
    const number = callNumber(p.call);
    outbound = { linkedid, number };
    setStatus($("client-status"), state === "calling" ? t("op.calling", { number }) : t("op.onCallWith", { number }));
  }
  if (S.pop && S.pop.linkedid === linkedid) {
    if (state === "answered" && !S.pop.answeredAt) S.pop.answeredAt = (p.call && p.call.answered_at) || new Date().toISOString();
    S.pop.state = state;
    if (p.call) S.pop.call = Object.assign({}, S.pop.call, p.call);
    savePop();
    renderPopState();
  }
}

/**
 * @param {string | null} linkedid
 * @param {any} p
 * @param {boolean} replayed
 */
function onEnded(linkedid, p, replayed) {
  if (outbound && outbound.linkedid === linkedid) {
    // the "On the call with …" of this click-to-call is over
    setStatus($("client-status"), t("op.callEndedWith", { number: outbound.number || p.client_number || "",
      status: named("op.st", p.status) }));
    outbound = null;
  }
  const known = S.calls.some((c) => c.linkedid === linkedid);
  const answeredBy = answeredElsewhere(p) ? p.answered_by : null;
  trackCall(linkedid, Object.assign(known ? {} : { number: p.client_number, at: new Date().toISOString() },
    { state: "ended", status: p.status, answeredBy, talk: answeredBy ? null : p.talk_seconds }));
  if (S.pop && S.pop.linkedid === linkedid && replayed && S.socket.freshStart) {
    // a page opened after the call: its history, not something to answer
    S.pop = null;
    savePop();
    renderPop();
  } else if (S.pop && S.pop.linkedid === linkedid) {
    S.pop.state = "ended";
    S.pop.status = p.status;
    S.pop.answeredBy = answeredBy;
    S.pop.talk = answeredBy ? null : p.talk_seconds;
    savePop();
    renderPopState();
    // the card the pop could not get was opened by the call's log: it opens beside the pop,
    // and the pop takes it (its result can be noted)
    if (S.pop.card_failed && p.client_id && !answeredBy && !replayed && !hasUnsavedEdits()) {
      openClient(p.client_id, p.deal_id || null, { focusName: true }).then(() => popTakesPanel(linkedid));
    }
  }
  // the call is in the database now: refresh what shows it
  loadMissed();
  if (S.panel && p.client_id && p.client_id === S.panel.clientId) {
    loadTimeline();
    loadTasks();
  }
}
