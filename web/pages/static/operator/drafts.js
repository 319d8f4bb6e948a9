// @ts-check
// What is typed on the open card and not saved yet. A call never takes it away: the pop shows
// beside the card; switching cards keeps each card's unsaved text with that card (by client id)
// and gives it back when the operator returns, so nothing typed is ever sent for another client.

import { input } from "../lib/dom.js";
import { S } from "./state.js";

/** Fields that compose something to send (a note, SMS, email, task): empty when nothing is typed. */
const COMPOSE = ["note-text", "sms-text", "email-subject", "email-body", "task-title"];

/** The card's own fields and the saved value each is compared with. */
const CARD = /** @type {Record<string, (c: any) => string>} */ ({
  "client-name": (c) => c.name || "",
  "client-company": (c) => c.company || "",
  "client-notes": (c) => c.notes || "",
  "client-phones": (c) => (c.phones || []).map((/** @type {any} */ p) => p.number).join("\n"),
  "client-emails": (c) => (c.emails || []).join("\n"),
});

export const DRAFT_FIELDS = [...COMPOSE, ...Object.keys(CARD)];

/** @type {Map<number, Record<string, string>>} client id -> its card's unsaved fields */
const drafts = new Map();

/** Does the open card hold anything typed and not saved? */
export function hasUnsavedEdits() {
  const panel = S.panel;
  if (!panel) return false;
  if (COMPOSE.some((id) => input(id).value.trim() !== "")) return true;
  const client = panel.client;
  return !!client && Object.entries(CARD).some(([id, saved]) => input(id).value.trim() !== saved(client).trim());
}

/** Keep the open card's unsaved text with its client and empty the card's fields. */
export function stashDrafts() {
  const panel = S.panel;
  if (panel && hasUnsavedEdits()) {
    /** @type {Record<string, string>} */
    const kept = {};
    for (const id of COMPOSE) if (input(id).value) kept[id] = input(id).value;
    if (panel.client) {
      for (const [id, saved] of Object.entries(CARD)) if (input(id).value.trim() !== saved(panel.client).trim()) kept[id] = input(id).value;
    }
    drafts.set(panel.clientId, kept);
  }
  // emptied, not left for the next card: if its client fails to load, nothing of this one shows
  for (const id of DRAFT_FIELDS) input(id).value = "";
}

/** Give a card back what was left unsaved on it (after its saved fields were loaded). @param {number} clientId */
export function restoreDrafts(clientId) {
  const kept = drafts.get(clientId);
  if (!kept || !S.panel || S.panel.clientId !== clientId) return;
  drafts.delete(clientId);
  for (const [id, value] of Object.entries(kept)) input(id).value = value;
}
