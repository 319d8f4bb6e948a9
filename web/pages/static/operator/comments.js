// @ts-check
// Comments on a logged communication (a call, SMS, email or note) in the card's history: a
// toggle under each item reads them and takes a new one. The node is kept per communication so
// a redraw of the timeline (a new call) does not lose an open box or a comment being typed.

import { api } from "../lib/api.js";
import { fillList, h } from "../lib/dom.js";
import * as fmt from "../lib/format.js";
import { t } from "../lib/i18n.js";

/** @type {Map<number, HTMLElement>} communication id -> its comments box */
const boxes = new Map();

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

/** @param {number} id a communication's id */
export function commentsOf(id) {
  let box = boxes.get(id);
  if (box) return box;
  const list = h("ul", { class: "mini comments", "data-testid": "comments" });
  const text = h("input", { "data-testid": "comment-text", maxLength: 10000, placeholder: t("op.comments.placeholder") });
  text.setAttribute("aria-label", t("op.comments.placeholder"));
  const status = h("span", { class: "status", role: "status" });
  const form = h("form", { class: "row", hidden: true },
    text, h("button", { type: "submit", class: "secondary", "data-testid": "comment-save", text: t("op.comments.add") }));
  const load = async () => {
    try {
      const rows = await api(`/api/communications/${id}/comments`);
      fillList(list, rows.map((/** @type {any} */ c) => h("li", { "data-comment-id": String(c.id) },
        h("span", { class: "muted", text: `${fmt.when(c.created_at)} ${c.user_name || ""}: ` }), c.body)), t("op.comments.none"));
    } catch (e) { fillList(list, [], message(e)); }
  };
  const toggle = h("button", { type: "button", class: "link", "data-testid": "comments-toggle", text: t("op.comments.show"),
    onclick: () => {
      form.hidden = !form.hidden;
      list.hidden = form.hidden;
      if (!form.hidden) load();
    } });
  list.hidden = true;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = text.value.trim();
    if (!body) return;
    try {
      await api(`/api/communications/${id}/comments`, { method: "POST", json: { body } });
      text.value = "";
      status.textContent = "";
      await load();
    } catch (e) { status.textContent = message(e); }
  });
  box = h("div", { class: "tl-comments", "data-testid": "tl-comments" }, toggle, list, form, status);
  boxes.set(id, box);
  return box;
}

/** Let go of the boxes of communications no longer on the card. @param {Set<number>} ids */
export function keepComments(ids) {
  for (const id of boxes.keys()) if (!ids.has(id)) boxes.delete(id);
}
