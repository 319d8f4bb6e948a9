// @ts-check
// The formal result of a contact, on any card (not only during a pop): the admins' list; a
// postponed contact asks when and why (a task), a refusal its reason (the deal goes to Lost),
// a sale its amount (the deal goes to Won). Sent for the client whose card it was chosen on.

import { api } from "../lib/api.js";
import { $, h, setStatus } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { ask } from "./ask.js";
import { refreshPanel } from "./panel.js";
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

/** @param {SubmitEvent} ev */
async function saveResult(ev) {
  ev.preventDefault();
  const panel = S.panel;
  const result = results.find((r) => String(r.id) === select().value);
  if (!panel || !result) return;
  const status = $("cr-status");
  const kind = result.kind;
  /** @type {Record<string, unknown>} */
  const body = { result_id: result.id, deal_id: panel.dealId || null };
  if (kind === "postponed" || kind === "refused" || kind === "sale") {
    const got = await ask({
      title: result.name, subject: panel.client ? panel.client.name : "",
      date: kind === "postponed", reason: kind !== "sale", lostReasons: kind === "refused", amount: kind === "sale",
    });
    if (!got) { setStatus(status, t("op.ask.cancelled"), true); return; }
    if (got.date) body.date = new Date(got.date).toISOString();
    if (got.reason) body.reason = got.reason;
    if (got.amount) body.amount = got.amount;
  }
  try {
    await api(`/api/clients/${panel.clientId}/result`, { method: "POST", json: body });
    setStatus(status, t("op.cr.saved", { name: result.name }));
    if (S.panel === panel) select().value = "";
    if (S.panel === panel) refreshPanel();
  } catch (e) { setStatus(status, e instanceof Error ? e.message : String(e), true); }
}

export function initResults() {
  loadResults();
  $("cr-form").addEventListener("submit", saveResult);
}
