// @ts-check
// Finding a card without a call: by name or company, by phone in any written form, or, with
// nothing typed, the clients this user is responsible for.

import { api } from "../lib/api.js";
import { $, fillList, h, input } from "../lib/dom.js";
import { t } from "../lib/i18n.js";
import { openClient } from "./panel.js";
import { S } from "./state.js";

const PHONE_LIKE = /^[+\d\s().-]+$/;

/** The clients query for what was typed. @param {string} q */
export function clientsQuery(q) {
  const digits = q.replace(/\D/g, "").length;
  if (!q) return `responsible_id=${S.user.id}`;
  return PHONE_LIKE.test(q) && digits >= 5 ? `phone=${encodeURIComponent(q)}` : `q=${encodeURIComponent(q)}`;
}

/** @param {SubmitEvent} ev */
async function find(ev) {
  ev.preventDefault();
  const q = input("find-q").value.trim();
  try {
    const page = await api(`/api/clients?${clientsQuery(q)}&limit=20`);
    fillList($("find-results"), page.items.map((/** @type {any} */ c) => {
      const li = h("li", { "data-client-id": String(c.id), class: "link" },
        h("span", { class: "strong", text: c.name }),
        c.company ? ` · ${c.company}` : "",
        (c.phones || []).length ? h("span", { class: "muted", text: ` · ${c.phones[0].number}` }) : null);
      li.onclick = () => openClient(c.id, null);
      return li;
    }), q ? t("op.find.nobody") : t("op.find.noClients"));
  } catch (e) {
    fillList($("find-results"), [h("li", { class: "error", text: e instanceof Error ? e.message : String(e) })], "");
  }
}

export function initFind() {
  $("find-form").addEventListener("submit", find);
}
