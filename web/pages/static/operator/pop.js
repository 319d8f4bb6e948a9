// @ts-check
// The screen-pop: who is calling (the card that came with the call), the call's state, and
// the result of the call (a note, a callback, a won deal).

import { api } from "../lib/api.js";
import { $, fillList, h, input, setStatus } from "../lib/dom.js";
import * as fmt from "../lib/format.js";
import { named, t } from "../lib/i18n.js";
import { endedText, stateText } from "./calls.js";
import { localInputValue, openClient, refreshPanel, setCallback } from "./panel.js";
import { S, savePop } from "./state.js";
import { stageMoveBody } from "./ask.js";
import { hasUnsavedEdits } from "./drafts.js";

export function renderPop() {
  const pop = S.pop;
  $("pop").hidden = !pop;
  $("idle").hidden = !!pop;
  if (!pop) { markPanel(); return; }
  const card = pop.card || {};
  const client = card.client;
  const deal = card.deal;
  // a new caller's card is on its way (call.card_opened): the number stands in for its name
  const pending = !!pop.new_caller && !client;
  const failed = !!pop.card_failed && !client; // ...or could not be opened
  $("pop-name").textContent = client ? client.name
    : ((pending || failed) && pop.number) || (pop.call && pop.call.caller_name) || t("op.unknownCaller");
  $("pop-company").textContent = client && client.company ? client.company : "";
  $("pop-number").textContent = pop.number || "";
  const badge = $("pop-new");
  badge.hidden = !pop.new_client && !pending && !failed;
  badge.dataset.i18n = pending || failed ? "op.newCaller" : "op.newClient"; // kept on a change of language
  badge.textContent = pending || failed ? t("op.newCaller") : t("op.newClient");
  $("pop-phones").textContent = client && client.phones && client.phones.length ? client.phones.join(", ") : pop.number || "—";
  $("pop-responsible").textContent = client && client.responsible
    ? client.responsible.name || t("op.user", { id: client.responsible.id }) : "—";
  const dealNode = $("pop-deal");
  if (deal) {
    dealNode.replaceChildren(
      h("span", { class: "strong", text: deal.title }), " · ",
      h("span", { "data-testid": "pop-deal-stage", id: "pop-deal-stage", text: deal.stage || "" }), " · ",
      h("span", { "data-testid": "pop-deal-amount", id: "pop-deal-amount", text: fmt.money(deal.amount, deal.currency || "RUB", { decimals: 0 }) }),
    );
  } else {
    dealNode.textContent = pending ? t("op.cardOpening") : failed ? t("op.cardFailed") : t("op.noOpenDeal");
  }
  fillList($("pop-recent"), (card.recent || []).slice(0, 5).map((/** @type {any} */ c) => h("li", {},
    h("span", { class: "muted", text: fmt.when(c.at) }), " ",
    c.kind === "call"
      ? `${c.direction === "in" ? t("op.callIn") : t("op.callOut")}, ${named("op.st", c.status)}${c.talk_seconds ? `, ${fmt.duration(c.talk_seconds)}` : ""}`
      : `${named("op.kind", c.kind)}${c.subject ? `: ${c.subject}` : ""}`,
  )), t("op.nothingYet"));
  fillList($("pop-tasks"), (card.tasks || []).map((/** @type {any} */ task) => h("li", {},
    task.title, task.due_at ? h("span", { class: "muted", text: ` · ${fmt.when(task.due_at)}` }) : null,
  )), t("op.none"));
  $("pop-direction").textContent = pop.call && pop.call.direction === "outbound" ? t("op.dirOut") : t("op.dirIn");
  $("pop-direction").dataset.direction = pop.call && pop.call.direction === "outbound" ? "out" : "in";
  if (client) loadPopDeals(client.id, false);
  else fillList($("pop-deals"), [], t("op.noOpenDeal"));
  $("pop-quick").hidden = !client;
  /** @type {HTMLButtonElement} */ ($("pop-open")).disabled = !client;
  /** @type {HTMLButtonElement} */ ($("result-save")).disabled = !client;
  renderPopState();
}

/**
 * The card beside a live pop should be the caller's; when it is not, say so (a note or a stage
 * move meant for the caller must not go to the card that happens to be open).
 */
export function markPanel() {
  const pop = S.pop;
  const caller = pop && pop.state !== "ended" && pop.card && pop.card.client;
  const other = !!(caller && S.panel && S.panel.clientId !== caller.id);
  $("panel-other").hidden = !other;
  if (other) $("panel-other-text").textContent = t("op.panelOther", { name: caller.name });
  // a card being edited is never replaced by a pop: it says so, and switching is one click
  const popClient = pop && pop.card && pop.card.client;
  const beside = !!(popClient && S.panel && S.panel.clientId !== popClient.id && hasUnsavedEdits());
  $("pop-beside").hidden = !beside;
  if (beside && S.panel) {
    const name = S.panel.client ? S.panel.client.name : t("op.clientFallback");
    $("pop-beside-text").textContent = t("op.beside.text", { name });
  }
}

/** @type {number | null} whose open deals the pop shows */
let dealsOf = null;

/**
 * The pop's list of the caller's open deals (all of them, not only the one the call is on).
 * @param {number} clientId
 * @param {boolean} force
 */
export async function loadPopDeals(clientId, force) {
  if (dealsOf === clientId && !force) return;
  dealsOf = clientId;
  try {
    const deals = (await api(`/api/clients/${clientId}/deals`)).filter((/** @type {any} */ d) => !d.is_closed);
    const card = S.pop && S.pop.card;
    if (!card || !card.client || card.client.id !== clientId) return;
    fillList($("pop-deals"), deals.map((/** @type {any} */ d) => {
      const li = h("li", { "data-deal-id": String(d.id), class: "link" },
        h("span", { class: "strong", text: d.title }), ` · ${d.stage || ""} · `,
        fmt.money(d.amount, d.currency || "RUB", { decimals: 0 }));
      li.onclick = () => openClient(clientId, d.id);
      return li;
    }), t("op.noOpenDeal"));
  } catch (e) { dealsOf = null; }
}

/** The ring or talk timer: m:ss since the ring began or the answer; the talk time once over. */
export function tickTimer() {
  const pop = S.pop;
  const node = $("pop-timer");
  if (!pop) { node.textContent = ""; return; }
  if (pop.state === "ringing" || pop.state === "calling") {
    const d = fmt.since((pop.call && pop.call.started_at) || pop.at);
    node.textContent = d ? t("op.timer.ring", { d }) : "";
  } else if (pop.state === "answered") {
    const d = fmt.since(pop.answeredAt || (pop.call && pop.call.answered_at));
    node.textContent = d ? t("op.timer.talk", { d }) : "";
  } else if (pop.state === "ended" && pop.talk) {
    node.textContent = t("op.timer.talk", { d: fmt.duration(pop.talk) });
  } else {
    node.textContent = "";
  }
}

export function renderPopState() {
  markPanel();
  if (!S.pop) return;
  const pop = $("pop");
  pop.dataset.state = S.pop.state;
  let label = stateText(S.pop.state);
  if (S.pop.state === "ended" && (S.pop.status || S.pop.answeredBy)) {
    label = t("op.endedWith", { status: endedText(S.pop.status, S.pop.answeredBy) });
  }
  $("pop-state").textContent = label;
  tickTimer();
}

function openCaller() {
  const card = S.pop && S.pop.card;
  if (card && card.client) openClient(card.client.id, card.deal ? card.deal.id : null);
}

const resultSelect = () => /** @type {HTMLSelectElement} */ ($("result-select"));

function onResultChange() {
  const later = resultSelect().value === "call back later";
  const at = input("result-callback-at");
  at.hidden = !later;
  at.required = later;
  if (later && !at.value) at.value = localInputValue(new Date(Date.now() + 60 * 60 * 1000));
}

/** A note typed for the last caller must not land on this one. */
export function resetResultForm() {
  input("result-note").value = "";
  input("pop-quick-text").value = "";
  setStatus($("pop-quick-status"), "");
  resultSelect().value = "";
  input("result-callback-at").value = "";
  onResultChange();
  setStatus($("result-status"), "");
}

/** The pop's "open tasks" came with the call: a callback set since then belongs there too. @param {number} clientId */
async function refreshPopTasks(clientId) {
  try {
    const tasks = await api(`/api/tasks?client_id=${clientId}&open_only=true`);
    const card = S.pop && S.pop.card;
    if (!card || !card.client || card.client.id !== clientId) return;
    card.tasks = tasks.map((/** @type {any} */ task) => ({ title: task.title, due_at: task.due_at }));
    savePop();
    renderPop();
  } catch (e) { /* the card panel shows the tasks anyway */ }
}

/** @param {SubmitEvent} ev */
async function saveResult(ev) {
  ev.preventDefault();
  const card = S.pop && S.pop.card;
  if (!card || !card.client) return;
  const status = $("result-status");
  const select = resultSelect();
  const result = select.value;
  const label = select.selectedOptions[0].textContent || result;
  const clientId = card.client.id;
  const dealId = card.deal ? card.deal.id : null;
  const save = /** @type {HTMLButtonElement} */ ($("result-save"));
  save.disabled = true;
  try {
    // "deal won" closes the deal as Won (its amount asked when it has none), "not interested"
    // as Lost (its reason asked): asked before anything is saved, so a cancel saves nothing
    const closeAs = !dealId ? null : result === "deal won" ? "won" : result === "not interested" ? "lost" : null;
    const closing = closeAs ? S.stages.find((s) => s.kind === closeAs) : null;
    const closeBody = closing ? await stageMoveBody(card.deal, closing) : null;
    if (closing && !closeBody) { setStatus(status, t("op.ask.cancelled"), true); return; }
    // the move first: a deal the server will not close (not this user's) saves no note either
    if (closeBody) {
      const d = await api(`/api/deals/${dealId}/stage`, { method: "POST", json: closeBody });
      if (S.pop && S.pop.card && S.pop.card.deal && S.pop.card.deal.id === d.id) {
        Object.assign(S.pop.card.deal, { stage: d.stage || (closing && closing.name), stage_id: d.stage_id, amount: d.amount });
        savePop();
        renderPop();
      }
    }
    await api("/api/notes", { method: "POST", json: {
      client_id: clientId, deal_id: dealId, result,
      body: input("result-note").value.trim() || label,
    } });
    if (result === "call back later") {
      const when = input("result-callback-at").value;
      await setCallback(clientId, dealId, t("op.callBackName", { name: card.client.name }), new Date(when).toISOString());
    }
    setStatus(status, t("op.saved"));
    input("result-note").value = "";
    select.value = "";
    onResultChange();
    if (S.panel && S.panel.clientId === clientId) refreshPanel();
    if (result === "call back later") refreshPopTasks(clientId);
  } catch (e) {
    setStatus(status, e instanceof Error ? e.message : String(e), true);
  } finally {
    save.disabled = false;
  }
}

export function initPop() {
  resultSelect().addEventListener("change", onResultChange);
  $("result-form").addEventListener("submit", saveResult);
  $("pop-close").onclick = () => { S.pop = null; savePop(); renderPop(); };
  $("pop-open").onclick = openCaller;
  $("pop-switch").onclick = openCaller;
  window.setInterval(tickTimer, 1000);
  $("panel-other-open").onclick = openCaller;
}
