// @ts-check
// The formal result of a contact, on any card (not only during a pop): the admins' list; a
// postponed contact asks when and why (a task), a refusal its reason (the deal goes to Lost),
// a sale its amount (the deal goes to Won). Sent for the client whose card it was chosen on.

import { api } from "../lib/api.js";
import { $, h, setStatus } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { ask } from "./ask.js";
import { loadTimeline, refreshPanel } from "./panel.js";
import { S } from "./state.js";

/** @type {{ id: number, name: string, kind: string }[]} */
let results = [];

const select = () => /** @type {HTMLSelectElement} */ ($("cr-select"));

async function loadResults() {
  try {
    results = await api("/api/contact-results");
  } catch (e) { results = []; }
  select().replaceChildren(h("option", { value: "", text: t("op.result.choose") }),
    ...results.map((r) => h("option", { value: String(r.id), "data-kind": r.kind, text: r.name })));
}

/**
 * Ask what the result needs, then record it at `path`.
 * @param {{ id: number, name: string, kind: string }} result
 * @param {string} path
 * @param {Record<string, unknown>} base
 * @param {string} who the client's name, shown in the dialog
 * @param {HTMLElement} status
 * @returns {Promise<boolean>} recorded
 */
async function record(result, path, base, who, status) {
  const kind = result.kind;
  /** @type {Record<string, unknown>} */
  const body = Object.assign({ result_id: result.id }, base);
  if (kind === "postponed" || kind === "refused" || kind === "sale") {
    const got = await ask({
      title: result.name, subject: who,
      date: kind === "postponed", reason: kind !== "sale", lostReasons: kind === "refused", amount: kind === "sale",
    });
    if (!got) { setStatus(status, t("op.ask.cancelled"), true); return false; }
    if (got.date) body.date = new Date(got.date).toISOString();
    if (got.reason) body.reason = got.reason;
    if (got.amount) body.amount = got.amount;
  }
  try {
    await api(path, { method: "POST", json: body });
    setStatus(status, t("op.cr.saved", { name: result.name }));
    return true;
  } catch (e) {
    setStatus(status, e instanceof Error ? e.message : String(e), true);
    return false;
  }
}

/** @param {SubmitEvent} ev */
async function saveResult(ev) {
  ev.preventDefault();
  const panel = S.panel;
  const result = results.find((r) => String(r.id) === select().value);
  if (!panel || !result) return;
  const ok = await record(result, `/api/clients/${panel.clientId}/result`, { deal_id: panel.dealId || null },
    panel.client ? panel.client.name : "", $("cr-status"));
  if (ok && S.panel === panel) {
    select().value = "";
    refreshPanel();
  }
}

/**
 * A result set on one logged contact in the card's history (a call, a message).
 * @param {number} id the communication's id
 */
export function resultOf(id) {
  const pick = h("select", { "data-testid": "tl-result-select" },
    h("option", { value: "", text: t("op.result.choose") }),
    ...results.map((r) => h("option", { value: String(r.id), "data-kind": r.kind, text: r.name })));
  pick.setAttribute("aria-label", t("op.cr.title"));
  const status = h("span", { class: "status", role: "status" });
  const form = h("form", { class: "row tl-result" }, pick,
    h("button", { type: "submit", class: "secondary", "data-testid": "tl-result-save", text: t("op.cr.save") }), status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const panel = S.panel;
    const result = results.find((r) => String(r.id) === pick.value);
    if (!panel || !result) return;
    const ok = await record(result, `/api/communications/${id}/result`, {}, panel.client ? panel.client.name : "", status);
    if (ok && S.panel === panel) refreshPanel();
  });
  return form;
}

export async function initResults() {
  $("cr-form").addEventListener("submit", saveResult);
  await loadResults();
  if (S.panel) loadTimeline(); // its calls' result pickers want the list
}
