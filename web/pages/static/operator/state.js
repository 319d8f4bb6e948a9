// @ts-check
// The workspace's state: the pop on screen (kept in localStorage, so a reload while the phone
// rings shows the pop again at once, and the replay from the last seq then brings it up to
// date), the recent calls (from the server), the open card, and the test hooks (window.__crm).

/**
 * @typedef {import("../lib/api.js").Me} Me
 * @typedef {import("../lib/ws.js").Socket} Socket
 * @typedef {{
 *   linkedid: string | null, state: string, call: any, card: any, new_client: boolean,
 *   new_caller?: boolean, card_failed?: boolean,
 *   number: string, at: string, shownAt?: number, status?: string, answeredBy?: string | null,
 *   answeredAt?: string, talk?: number | null,
 * }} Pop
 * @typedef {{
 *   linkedid: string, state?: string, name?: string | null, number?: string, at?: string | null,
 *   status?: string, answeredBy?: string | null, talk?: number | null, clientId?: number | null,
 *   dealId?: number | null,
 * }} CallRow
 * @typedef {{ clientId: number, dealId: number | null, client: any, deal: any }} Panel
 * @typedef {{ id: number, name: string, kind: string }} Stage
 */

export const POP_MAX_AGE_MS = 60 * 60 * 1000; // a restored pop older than this is stale
export const ALERT_MAX_AGE_MS = 30 * 1000; // replayed ringing older than this pops silently

export const S = {
  /** @type {Me} */
  user: /** @type {any} */ (null),
  /** @type {Socket} */
  socket: /** @type {any} */ (null),
  keys: { pop: "" },
  /** @type {Pop | null} */
  pop: null,
  /** @type {CallRow[]} */
  calls: [],
  /** @type {Stage[]} */
  stages: [],
  /** @type {Panel | null} */
  panel: null,
  /**
   * Communication ids whose delivery already failed: the failure can arrive on the socket before
   * the send's own answer, which must then not cover it with "queued".
   * @type {Set<number>}
   */
  failedMessages: new Set(),
  originateFailures: 0, // click-to-call failures heard: one heard during the request is its own
};

/** Diagnostics and test hooks (read-only use; `drop()` closes the socket like a network loss). */
export const diag = {
  /** @type {{ type: string, seq?: number, linkedid: string | null, at: number, replayed: boolean, answered_at: string | null }[]} */
  log: [],
  /** @type {Record<string, number>} linkedid -> Date.now() when its ringing pop was first rendered */
  popRenderedAt: {},
  /** @type {Record<string, string | undefined>} linkedid -> call state shown at that moment */
  popStateAtRender: {},
  beeps: 0, // ring sounds played
  /** @type {{ title: string, body: string }[]} desktop notifications shown */
  notifications: [],
  drop() { S.socket.drop(); },
  get connects() { return S.socket.connects; },
  get attempt() { return S.socket.attempt; }, // failed connections in a row (the backoff's)
  get lastSeq() { return S.socket.lastSeq; },
  get connected() { return S.socket.connected; },
};

/** The per-user storage keys for the seq the socket keeps. @param {Me} me */
export const seqKey = (me) => `crm_last_seq:${me.id}`;

/** @param {string} key */
export function loadJSON(key) {
  try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
}

/** @param {string} key @param {unknown} value */
export function saveJSON(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch (e) { /* storage full or disabled: the page still works, reloads just lose the pop */ }
}

export function savePop() {
  saveJSON(S.keys.pop, S.pop);
}

/**
 * @param {Me} me
 * @param {Socket} socket
 */
export function initState(me, socket) {
  S.user = me;
  S.socket = socket;
  S.keys = { pop: `crm_pop:${me.id}` };
  S.pop = loadJSON(S.keys.pop);
  S.calls = []; // from the server (calls.js loadRecent), not this browser's storage
  saveJSON(`crm_calls:${me.id}`, null); // what older versions kept here
  if (S.pop && (!S.pop.shownAt || Date.now() - S.pop.shownAt > POP_MAX_AGE_MS)) S.pop = null;
  /** @type {any} */ (window).__crm = diag;
}
