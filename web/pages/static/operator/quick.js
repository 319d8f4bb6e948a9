// @ts-check
// The pop's quick actions: a note, a task or a new deal for the caller, from one line of text.
// Each goes to the client of the pop it was typed in (captured at the click; a new pop empties
// the line), never to the card that happens to be open beside it.

import { api } from "../lib/api.js";
import { $, input, setStatus } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { loadTasks, loadTimeline } from "./panel.js";
import { loadPopDeals } from "./pop.js";
import { S } from "./state.js";

const HOUR_MS = 60 * 60 * 1000;

/** @param {"note" | "task" | "deal"} what */
async function quick(what) {
  const card = S.pop && S.pop.card;
  if (!card || !card.client) return;
  const clientId = card.client.id;
  const dealId = card.deal ? card.deal.id : null;
  const name = card.client.name;
  const text = input("pop-quick-text").value.trim();
  const status = $("pop-quick-status");
  if (what === "note" && !text) { setStatus(status, t("op.quick.typeFirst"), true); return; }
  try {
    if (what === "note") {
      await api("/api/notes", { method: "POST", json: { client_id: clientId, deal_id: dealId, body: text } });
    } else if (what === "task") {
      await api("/api/tasks", { method: "POST", json: {
        title: text || t("op.quick.taskTitle", { name }), kind: "other",
        due_at: new Date(Date.now() + HOUR_MS).toISOString(), client_id: clientId, deal_id: dealId,
      } });
    } else {
      await api("/api/deals", { method: "POST", json: { client_id: clientId, title: text || t("op.quick.dealTitle", { name }) } });
      loadPopDeals(clientId, true);
    }
    setStatus(status, t(`op.quick.${what}Done`));
    if (S.pop && S.pop.card && S.pop.card.client && S.pop.card.client.id === clientId) input("pop-quick-text").value = "";
    if (S.panel && S.panel.clientId === clientId) { loadTimeline(); loadTasks(); }
  } catch (e) { setStatus(status, e instanceof Error ? e.message : String(e), true); }
}

export function initQuick() {
  $("pop-quick").addEventListener("submit", (ev) => { ev.preventDefault(); quick("note"); });
  $("pop-add-note").onclick = () => quick("note");
  $("pop-add-task").onclick = () => quick("task");
  $("pop-add-deal").onclick = () => quick("deal");
}
