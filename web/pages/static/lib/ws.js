// @ts-check
// The page's one websocket to /ws: authentication, replay of what was missed, backoff, state.
//
// Protocol (web/ws.py): the token goes in the first message (not in the URL: URLs end up in
// logs), with `last_seq` to replay what this page missed; the server answers "subscribed"
// (its position: frames up to it are replayed ones), then numbered frames
// {seq, channel, type, payload, at} (a screen-pop may come first without seq: shown before
// event_log numbered it, its numbered copy not sent here but when its append's answer is lost
// or late; a reconnect or reload before a numbered frame newer than the pop replays it once more); "ping" wants a "pong"; "replay.truncated" means too much
// was missed for the socket, so the rest comes page by page from GET /api/events. With
// `status: true` the server also sends "system.status" ({ami}) at once and on every change.
// Close 4401: the sign-in ended -> the sign-in page; 4403: a channel not ours -> "denied".

import { api, toSignIn, token } from "./api.js";

/**
 * @typedef {{ seq?: number, channel?: string, type: string, payload?: any, at?: string, [k: string]: any }} Frame
 * @typedef {{ replayed: boolean }} FrameInfo
 * @typedef {(msg: Frame, info: FrameInfo) => void} Handler
 * @typedef {"connecting" | "open" | "closed" | "denied" | "stopped"} ConnState
 * @typedef {{ state: ConnState, attempt: number, retryInMs: number }} ConnInfo
 * @typedef {{ ami: string } | null} SystemStatus
 * @typedef {{
 *   lastSeqKey?: string, replayFromStart?: boolean, channels?: string[], status?: boolean,
 * }} SocketOptions
 * `lastSeqKey`: localStorage key keeping the last seq seen, so a reload replays what it missed;
 * `replayFromStart`: with nothing stored, ask for everything the server keeps (last_seq 0);
 * otherwise a first connection gets only live frames. `status`: ask for "system.status".
 */

// the server pings every 20 s; silence much longer means a dead link nobody closed (sleep,
// Wi-Fi change, NAT timeout): give up on that socket rather than wait for TCP to notice
const SILENCE_MS = 55 * 1000;
const MAX_BACKOFF_MS = 10 * 1000;
// the backoff starts over once a subscribed socket has stayed up this long: a server that
// subscribes and then fails (its replay query) is still retried ever more slowly
const SETTLED_MS = 3 * 1000;

export class Socket {
  /** @param {SocketOptions} [options] */
  constructor(options = {}) {
    this.options = options;
    const stored = options.lastSeqKey ? Number(localStorage.getItem(options.lastSeqKey) || 0) || 0 : 0;
    /** the highest seq applied */
    this.lastSeq = stored;
    /** nothing was stored: this page starts afresh (until its first reconnect) */
    this.freshStart = !stored;
    /** server position at subscription: frames up to it are a replay */
    this.replayUntil = 0;
    /** successful connections so far (1 after the first) */
    this.connects = 0;
    /** @type {Set<number>} */
    this.seen = new Set();
    /** @type {Map<string, Set<Handler>>} */
    this.handlers = new Map();
    /** @type {Set<(info: ConnInfo) => void>} */
    this.stateListeners = new Set();
    /** @type {Set<(status: SystemStatus) => void>} */
    this.statusListeners = new Set();
    /** @type {ConnInfo} */
    this.info = { state: "connecting", attempt: 0, retryInMs: 0 };
    /** @type {SystemStatus} */
    this.status = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} resets the backoff (SETTLED_MS) */
    this.settling = undefined;
    this.stopped = false;
    this.lastHeard = 0;
    setInterval(() => this.checkSilence(), 5000);
    // back from sleep or a network change: try now instead of waiting out the backoff
    window.addEventListener("online", () => { if (!this.ws && !this.stopped) { this.attempt = 0; this.connect(); } });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && !this.ws && !this.stopped) this.connect();
    });
  }

  /**
   * Call `fn` for every frame of this type ("*": every message frame, numbered or a pop shown before its number). Returns an unsubscribe.
   * @param {string} type
   * @param {Handler} fn
   * @returns {() => void}
   */
  on(type, fn) {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /**
   * The connection's state now and on every change. Returns an unsubscribe.
   * @param {(info: ConnInfo) => void} fn
   */
  onState(fn) {
    this.stateListeners.add(fn);
    fn(this.info);
    return () => this.stateListeners.delete(fn);
  }

  /**
   * Whether the service follows the PBX (null until the server said). Returns an unsubscribe.
   * @param {(status: SystemStatus) => void} fn
   */
  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status);
    return () => this.statusListeners.delete(fn);
  }

  get connected() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** @param {ConnState} state @param {number} [retryInMs] */
  setState(state, retryInMs = 0) {
    this.info = { state, attempt: this.attempt, retryInMs };
    for (const fn of this.stateListeners) fn(this.info);
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const t = token();
    if (!t) { toSignIn(); return; }
    this.setState("connecting");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    /** @type {WebSocket} */
    let ws;
    try { ws = new WebSocket(`${proto}//${location.host}/ws`); } catch (e) { this.scheduleReconnect(); return; }
    this.ws = ws;
    this.lastHeard = Date.now();
    ws.onopen = () => {
      /** @type {Record<string, unknown>} */
      const hello = { token: t };
      if (this.lastSeq || this.options.replayFromStart) hello.last_seq = this.lastSeq;
      if (this.options.channels) hello.channels = this.options.channels;
      if (this.options.status) hello.status = true;
      ws.send(JSON.stringify(hello));
      // "open" (the page's "live"), the backoff's reset and the count of connections wait for
      // the server's "subscribed": until then it is still checking the token (what is
      // published meanwhile comes as a replay), and it may yet close the socket
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      /** @type {Frame} */
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "ping") {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "pong" }));
        return;
      }
      if (msg.type === "subscribed") {
        this.replayUntil = Number(msg.last_seq) || 0;
        if (this.connects > 0) this.freshStart = false; // a reconnect replays what was missed live
        this.connects += 1;
        clearTimeout(this.settling);
        this.settling = setTimeout(() => { if (this.ws === ws) this.attempt = 0; }, SETTLED_MS);
        this.setState("open");
        return;
      }
      if (msg.type === "replay.truncated") { this.catchUp(Number(msg.after) || 0); return; }
      if (msg.type === "system.status") {
        this.status = { ami: String(msg.ami) };
        for (const fn of this.statusListeners) fn(this.status);
        return;
      }
      this.deliver(msg, false);
    };
    ws.onclose = (ev) => {
      clearTimeout(this.settling);
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4401) { this.stop(); toSignIn(); return; } // the sign-in ended
      if (ev.code === 4403) { this.setState("denied"); return; }
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows and schedules the retry */ };
  }

  scheduleReconnect() {
    this.attempt += 1;
    // 0.5, 1, 2, 4, 8, 10 s… with jitter, so a restarted server is not hit by every page at once
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.attempt - 1));
    const delay = base / 2 + (Math.random() * base) / 2;
    this.setState("closed", delay);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  checkSilence() {
    const ws = this.ws;
    if (!ws || this.stopped || Date.now() - this.lastHeard < SILENCE_MS) return;
    ws.onclose = ws.onmessage = ws.onerror = null;
    try { ws.close(4000, "no ping"); } catch (e) { /* already closing */ }
    this.ws = null;
    this.scheduleReconnect();
  }

  /** Close like a network loss (tests, diagnostics): the backoff reconnects and replays. */
  drop() {
    if (this.ws) this.ws.close(4000, "test drop");
  }

  /** For good (sign-out). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "sign out");
    this.setState("stopped");
  }

  /**
   * Missed frames over REST, page by page (the socket said its replay would be too long).
   * @param {number} after
   */
  async catchUp(after) {
    try {
      for (let round = 0; round < 50; round += 1) {
        const data = await api(`/api/events?after=${after}`);
        for (const msg of data.events || []) this.deliver(msg, true);
        after = Number(data.last_seq) || after;
        if (!data.more) break;
      }
      this.remember(after);
    } catch (e) { /* the next reconnect replays from lastSeq again */ }
  }

  /** @param {number} seq */
  remember(seq) {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    if (this.options.lastSeqKey) {
      try { localStorage.setItem(this.options.lastSeqKey, String(seq)); } catch (e) { /* storage full */ }
    }
  }

  /**
   * Hand a frame to its handlers once (a replay overlapping live delivery is applied once).
   * @param {Frame} msg
   * @param {boolean} replayed
   */
  deliver(msg, replayed) {
    const info = { replayed: replayed || (typeof msg.seq === "number" && msg.seq <= this.replayUntil) };
    if (typeof msg.seq === "number") {
      if (this.seen.has(msg.seq)) return;
      this.seen.add(msg.seq);
      if (this.seen.size > 2000) this.seen = new Set([...this.seen].slice(-1000));
      this.remember(msg.seq);
    }
    for (const key of [msg.type, "*"]) {
      for (const fn of this.handlers.get(key) || []) {
        try { fn(msg, info); } catch (e) { setTimeout(() => { throw e; }); } // reported, not fatal
      }
    }
  }
}
