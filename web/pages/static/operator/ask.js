// @ts-check
// A small modal asking what a deal's close needs: the lost reason (from the admins' list) or
// the amount of a won deal that has none. Built on demand, so the page's HTML stays as it is.

import { api } from "../lib/api.js";
import { h } from "../lib/dom.js";
import { t } from "../lib/i18n.js";

/** @type {string[] | null} the admins' lost reasons, read once */
let reasons = null;

export async function lostReasons() {
  if (!reasons) {
    try {
      reasons = (await api("/api/lists/lost-reasons")).map((/** @type {any} */ c) => String(c.name));
    } catch (e) { return []; }
  }
  return reasons || [];
}

/**
 * Ask the fields named: resolves to their values, or null when cancelled.
 * @param {{ title: string, subject?: string, reason?: boolean, lostReasons?: boolean, amount?: boolean, date?: boolean }} what
 * @returns {Promise<{ reason?: string, amount?: string, date?: string } | null>}
 */
export async function ask(what) {
  const list = what.reason && what.lostReasons !== false ? await lostReasons() : [];
  const reasonInput = h("input", { id: "ask-reason", "data-testid": "ask-reason", maxLength: 2000,
    required: true, placeholder: t("op.ask.reasonHint") });
  const amountInput = h("input", { id: "ask-amount", "data-testid": "ask-amount", type: "number", min: "0", step: "0.01", required: true });
  const dateInput = h("input", { id: "ask-date", "data-testid": "ask-date", type: "datetime-local", required: true });
  reasonInput.setAttribute("list", "ask-reasons");
  const error = h("p", { class: "error", "data-testid": "ask-error", hidden: true });
  const form = h("form", { method: "dialog", class: "ask" },
    h("h3", { text: what.title }),
    what.subject ? h("p", { class: "muted", text: what.subject }) : null,
    what.date ? h("label", {}, h("span", { text: t("op.ask.date") }), " ", dateInput) : null,
    what.reason ? h("label", {}, h("span", { text: t("op.ask.reason") }), " ", reasonInput) : null,
    list.length ? h("datalist", { id: "ask-reasons" }, ...list.map((r) => h("option", { value: r }))) : null,
    what.amount ? h("label", {}, h("span", { text: t("op.ask.amount") }), " ", amountInput) : null,
    error,
    h("div", { class: "actions" },
      h("button", { type: "submit", "data-testid": "ask-ok", text: t("op.ask.ok") }),
      h("button", { type: "button", class: "secondary", "data-testid": "ask-cancel", text: t("op.ask.cancel") })));
  const dialog = /** @type {HTMLDialogElement} */ (h("dialog", { id: "ask-dialog", "data-testid": "ask-dialog" }, form));
  document.body.append(dialog);
  const field = (/** @type {Element} */ el) => /** @type {HTMLInputElement} */ (el);
  return new Promise((resolve) => {
    /** @param {{ reason?: string, amount?: string, date?: string } | null} value */
    const done = (value) => { dialog.close(); dialog.remove(); resolve(value); };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      /** @type {{ reason?: string, amount?: string, date?: string }} */
      const out = {};
      if (what.reason) out.reason = field(reasonInput).value.trim();
      if (what.amount) out.amount = field(amountInput).value.trim();
      if (what.date) out.date = field(dateInput).value;
      if ((what.reason && !out.reason) || (what.amount && !(Number(out.amount) > 0)) || (what.date && !out.date)) {
        error.textContent = t("op.ask.needed");
        error.hidden = false;
        return;
      }
      done(out);
    });
    /** @type {HTMLButtonElement} */ (form.querySelector("[data-testid=ask-cancel]")).onclick = () => done(null);
    dialog.addEventListener("cancel", (ev) => { ev.preventDefault(); done(null); });
    dialog.showModal();
    field(what.date ? dateInput : what.reason ? reasonInput : amountInput).focus();
  });
}

/**
 * The stage move's body with what the stage needs (null: the user cancelled).
 * @param {{ title?: string, amount?: string | number | null } | null} deal
 * @param {{ id: number, name: string, kind?: string }} stage
 * @returns {Promise<Record<string, unknown> | null>}
 */
export async function stageMoveBody(deal, stage) {
  const lost = stage.kind === "lost";
  const won = stage.kind === "won";
  const needsAmount = won && !(Number(deal && deal.amount) > 0);
  if (!lost && !needsAmount) return { stage_id: stage.id };
  const got = await ask({ title: t(lost ? "op.ask.lostTitle" : "op.ask.wonTitle", { stage: stage.name }),
    subject: (deal && deal.title) || "", reason: lost, amount: needsAmount });
  if (!got) return null;
  /** @type {Record<string, unknown>} */
  const body = { stage_id: stage.id };
  if (lost) body.lost_reason = got.reason;
  if (needsAmount) body.amount = got.amount;
  return body;
}
