// @ts-check
// Missed calls to act on (this user's callbacks made by missed calls): client, when, how many
// tries, and "Call back" (click-to-call; the answered call then closes the callback by itself).

import { api } from "../lib/api.js";
import { $, fillList, h, setStatus } from "../lib/dom.js";
import * as fmt from "../lib/format.js";
import { t } from "../lib/i18n.js";
import { openClient } from "./panel.js";

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

let pending = false;

export async function loadMissed() {
  if (pending) return;
  pending = true;
  try {
    const rows = await api("/api/missed-calls?limit=50");
    fillList($("missed"), rows.map((/** @type {any} */ m) => {
      const open = h("span", { class: "link strong", text: m.client_name, onclick: () => openClient(m.client_id, m.deal_id || null) });
      return h("li", { "data-client-id": String(m.client_id), "data-task-id": String(m.task_id) },
        open, m.phone ? h("span", { class: "muted", text: ` · ${m.phone}` }) : null,
        h("span", { class: "muted", text: ` · ${fmt.when(m.last_missed_at)}` }),
        h("span", { class: "badge", "data-testid": "missed-tries", text: ` ${t("op.missed.tries", { n: m.tries })}` }), " ",
        h("button", { type: "button", class: "secondary", "data-testid": "missed-call", text: t("op.missed.callBack"),
          onclick: () => callBack(m) }));
    }), t("op.missed.none"));
  } catch (e) { fillList($("missed"), [], message(e)); } finally { pending = false; }
}

/** @param {any} m a missed-calls row */
async function callBack(m) {
  try {
    const r = await api("/api/calls/originate", { method: "POST", json: { client_id: m.client_id, deal_id: m.deal_id || null } });
    setStatus($("missed-status"), t("op.ringingYourPhone", { ext: r.extension, number: r.number }));
  } catch (e) { setStatus($("missed-status"), message(e), true); }
}
