// @ts-check
// The agent's own presence on the workspace (issue 16): one click for available (which also
// ends a wrap-up early), a pause under the reason chosen beside it, or do not disturb. It follows
// agent.presence on the agent's own channel (a wrap-up after a call, a supervisor's change, the
// PBX's pause) and shows how long the agent has been in the state, ticking.

import { api } from "../lib/api.js";
import { $, h } from "../lib/dom.js";
import * as fmt from "../lib/format.js";
import { t } from "../lib/i18n.js";
import { presenceNow, presenceText } from "../lib/presence.js";

/** @typedef {{ state: string, reason: string | null, since: string | null, until: string | null }} Presence */
/** @typedef {import("../lib/ws.js").Socket} Socket */

/** @type {Presence} */
let mine = { state: "available", reason: null, since: null, until: null };
/** @type {{ code: string, name: string }[]} */
let reasons = [];

function draw() {
  const p = presenceNow(mine, Date.now());
  const el = $("presence-state");
  el.textContent = presenceText(p.state, mine.reason, reasons);
  el.dataset.state = p.state;
  el.className = `presence-${p.state}`;
  $("presence-since").textContent = fmt.since(p.since);
  $("presence-available").hidden = p.state === "available";
}

/** @param {any} p */
function take(p) {
  mine = { state: p.state, reason: p.reason ?? null, since: p.since ?? null, until: p.until ?? null };
  draw();
}

/** @param {string} state */
async function set(state) {
  const error = $("presence-error");
  error.textContent = "";
  const select = /** @type {HTMLSelectElement} */ ($("presence-reason"));
  try {
    take(await api("/api/presence/me", { method: "PUT", json: { state, reason: state === "paused" ? select.value || null : null } }));
  } catch (e) {
    error.textContent = t("presence.setFailed", { error: e instanceof Error ? e.message : String(e) });
  }
}

/**
 * @param {number} userId
 * @param {Socket} socket
 */
export function initPresence(userId, socket) {
  $("presence-available").addEventListener("click", () => set("available"));
  $("presence-pause").addEventListener("click", () => set("paused"));
  $("presence-dnd").addEventListener("click", () => set("dnd"));
  socket.on("agent.presence", (msg) => {
    if (msg.payload && msg.payload.user_id === userId) take(msg.payload);
  });
  api("/api/presence/me").then(take).catch(() => {});
  api("/api/presence/reasons").then((list) => {
    reasons = list;
    $("presence-reason").replaceChildren(...reasons.map((r) => h("option", { value: r.code, text: r.name })));
    draw();
  }).catch(() => {});
  setInterval(draw, 1000);
  $("presence-bar").hidden = false;
}
