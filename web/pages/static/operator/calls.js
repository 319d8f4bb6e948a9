// @ts-check
// The list of this user's recent calls and how a call is named. The list comes from the server
// (the same on any computer the user signs in at); the calls of this session are added live.

import { $, fillList, h } from "../lib/dom.js";
import * as fmt from "../lib/format.js";
import { named, t } from "../lib/i18n.js";
import { openClient } from "./panel.js";
import { api } from "../lib/api.js";
import { S } from "./state.js";

/** The client's number as the card shows it (E.164), else what was dialled or called from. @param {any} call */
export function callNumber(call) {
  if (!call) return "";
  if (call.client_number) return call.client_number;
  return call.direction === "outbound" ? call.did_or_dialled || "" : call.caller_number || "";
}

/** What the list of recent calls needs of a call it may not have seen ring. @param {any} call */
export function callFacts(call) {
  if (!call) return {};
  return {
    number: callNumber(call), name: call.client_name || null, at: call.started_at || null,
    clientId: call.client_id || null, dealId: call.deal_id || null,
  };
}

/** "answered" by someone else is not this phone's call. @param {any} p call.ended's payload */
export function answeredElsewhere(p) {
  return p.status === "answered" && !!p.answered_by && p.answered_by !== S.user.extension;
}

/**
 * How a call ended, for this phone, in words (kept as the server's status and who answered, so
 * the words follow the language).
 * @param {string | undefined} status
 * @param {string | null | undefined} answeredBy set when someone else answered it
 */
export function endedText(status, answeredBy) {
  return answeredBy ? t("op.answeredBy", { ext: answeredBy }) : named("op.st", status);
}

/** A pop's or a row's state in words. @param {string} state */
export function stateText(state) {
  return named("op.state", state);
}

/**
 * @param {string | null} linkedid
 * @param {Partial<import("./state.js").CallRow>} fields
 */
export function trackCall(linkedid, fields) {
  if (!linkedid) return;
  let row = S.calls.find((c) => c.linkedid === linkedid);
  if (!row) {
    row = { linkedid };
    S.calls.unshift(row);
    S.calls.length = Math.min(S.calls.length, 30);
  }
  for (const [k, v] of Object.entries(fields)) if (v != null) /** @type {any} */ (row)[k] = v;
  renderCalls();
}

/** The server's recent calls of this user, after the calls this page already saw live. */
export async function loadRecent() {
  try {
    const rows = await api("/api/calls/recent?limit=30");
    const live = S.calls.filter((c) => !c.linkedid.startsWith("db:"));
    // a call seen live and already stored is listed once (same client, same start)
    const isLive = (/** @type {any} */ c) => live.some((l) => l.clientId === c.client_id && l.at
      && Math.abs(Date.parse(l.at) - Date.parse(c.occurred_at)) < 5000);
    S.calls = live.concat(rows.filter((/** @type {any} */ c) => !isLive(c)).map((/** @type {any} */ c) => ({
      linkedid: `db:${c.id}`, state: "ended", status: c.status, name: c.client_name, number: c.phone || "",
      at: c.occurred_at, talk: c.talk_seconds, clientId: c.client_id, dealId: c.deal_id,
    }))).slice(0, 30);
    renderCalls();
  } catch (e) { /* the live list still fills as calls come */ }
}

export function renderCalls() {
  fillList($("calls"), S.calls.map((c) => {
    const li = h("li", { "data-linkedid": c.linkedid, "data-state": c.state, class: c.clientId ? "link" : null },
      h("span", { class: "muted", text: fmt.when(c.at) }), " ",
      c.name || c.number || t("op.unknown"), " — ",
      c.state === "ended"
        ? `${c.status || c.answeredBy ? endedText(c.status, c.answeredBy) : stateText("ended")}${c.talk ? `, ${fmt.duration(c.talk)}` : ""}`
        : stateText(c.state || ""));
    const clientId = c.clientId;
    if (clientId) li.onclick = () => openClient(clientId, c.dealId || null);
    return li;
  }), t("op.noCalls"));
}
