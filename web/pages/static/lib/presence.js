// @ts-check
// An agent's presence as the pages show it (the board's agents, the workspace's own state): what
// it is now and its text. One place for both, so the board and the agent never disagree.

import { registerCatalogue, t } from "./i18n.js";
import en from "./i18n/presence.en.js";
import ru from "./i18n/presence.ru.js";

registerCatalogue({ ru, en });

/** @typedef {{ state?: string | null, since?: string | null, until?: string | null }} Presence */

/**
 * The presence now: a wrap-up whose end has passed is "available" since its end (nobody writes
 * when it ends).
 * @param {Presence} p @param {number} nowMs
 * @returns {{ state: string, since: string | null, expired: boolean }}
 */
export function presenceNow(p, nowMs) {
  if (p.state === "wrapup" && p.until && Date.parse(p.until) <= nowMs) {
    return { state: "available", since: p.until, expired: true };
  }
  return { state: p.state || "available", since: p.since || null, expired: false };
}

/** @type {Record<string, string>} */
const STATE_KEYS = {
  available: "presence.state.available", paused: "presence.state.paused",
  dnd: "presence.state.dnd", wrapup: "presence.state.wrapup",
};

/**
 * The state in the user's language (an unknown one as the server said it); a pause with its
 * reason by its name in the (admin-edited) list, one not in it (set at the PBX) as given.
 * @param {string} state @param {string | null | undefined} reason
 * @param {{ code: string, name: string }[]} reasons
 */
export function presenceText(state, reason, reasons) {
  const text = STATE_KEYS[state] ? t(STATE_KEYS[state]) : state;
  if (state !== "paused" || !reason) return text;
  const named = reasons.find((r) => r.code === reason);
  return `${text} (${named ? named.name : reason})`;
}
