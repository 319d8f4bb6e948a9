// @ts-check
// Link the open card (typically the one an unknown number made) to an existing client: find
// them, then "Link here" merges this card into theirs (calls, deals, tasks, phones move there)
// and opens the client kept.

import { api } from "../lib/api.js";
import { $, fillList, h, input, setStatus } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { clientsQuery } from "./find.js";
import { openClient } from "./panel.js";
import { renderPop } from "./pop.js";
import { S, savePop } from "./state.js";

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

async function findTargets() {
  const panel = S.panel;
  if (!panel) return;
  const fromId = panel.clientId;
  const q = input("merge-q").value.trim();
  try {
    const page = await api(`/api/clients?${clientsQuery(q)}&limit=20`);
    const others = page.items.filter((/** @type {any} */ c) => c.id !== fromId);
    fillList($("merge-results"), others.map((/** @type {any} */ c) => h("li", { "data-client-id": String(c.id) },
      h("span", { class: "strong", text: c.name }), c.company ? ` · ${c.company}` : "", " ",
      h("button", { type: "button", class: "secondary", "data-testid": "merge-into", text: t("op.merge.into"),
        onclick: () => mergeInto(fromId, c.id) }))), t("op.find.nobody"));
  } catch (e) { fillList($("merge-results"), [h("li", { class: "error", text: message(e) })], ""); }
}

/** @param {number} fromId the card that goes @param {number} intoId the client kept */
async function mergeInto(fromId, intoId) {
  try {
    await api(`/api/clients/${fromId}/merge`, { method: "POST", json: { into_client_id: intoId } });
    // a pop showing the merged card now shows the client kept
    const card = S.pop && S.pop.card;
    if (card && card.client && card.client.id === fromId) {
      const kept = await api(`/api/clients/${intoId}`);
      card.client = Object.assign({}, card.client, { id: kept.id, name: kept.name, company: kept.company,
        phones: (kept.phones || []).map((/** @type {any} */ p) => p.number) });
      S.pop && (S.pop.new_client = false);
      savePop();
      renderPop();
    }
    fillList($("merge-results"), [], "");
    input("merge-q").value = "";
    /** @type {HTMLDetailsElement} */ ($("merge-box")).open = false;
    await openClient(intoId, null);
    setStatus($("client-status"), t("op.merge.done"));
  } catch (e) { setStatus($("merge-status"), message(e), true); }
}

export function initMerge() {
  $("merge-find").onclick = findTargets;
  input("merge-q").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); findTargets(); }
  });
}
