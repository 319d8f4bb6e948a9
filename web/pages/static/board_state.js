// @ts-check
// The board's state and how each typed message changes it: pure (no DOM, no fetch), so the
// board applies a message in place instead of reloading, and a test can check it in a page.
//
// Live parts (calls in progress, each agent's phone and presence, who waits in a queue) follow
// the messages; what a finished call changes in the tables of the day (missed, recent, today's
// figures, queue figures) is re-read once per call.ended (GET /api/dashboard/finished).

/**
 * @typedef {{ [k: string]: any }} Obj
 * @typedef {{
 *   at: string, calls: Map<string, Obj>, agents: Obj[], missed: Obj[], recent: Obj[],
 *   today: Obj[], queueStats: Obj[], touched: { calls: Set<string>, agents: Set<number> },
 * }} Board
 *
 * `touched`: the calls (linkedid) and agents (user_id) the messages changed since the page last
 * drew them, so it redraws those rows only (200 calls and 300 agents: a whole table per message
 * costs more than the message).
 */

/** @param {any} b GET /api/dashboard @returns {Board} */
export function fromSnapshot(b) {
  return {
    at: b.at,
    calls: new Map((b.calls || []).map((/** @type {Obj} */ c) => [c.linkedid, c])),
    agents: b.agents || [],
    missed: b.missed_today || [],
    recent: b.recent_calls || [],
    today: b.today || [],
    queueStats: b.queue_stats || [],
    touched: { calls: new Set(), agents: new Set() },
  };
}

/** @param {Board} board @param {any} part GET /api/dashboard/finished */
export function applyFinished(board, part) {
  board.missed = part.missed_today;
  board.recent = part.recent_calls;
  board.today = part.today;
  board.queueStats = part.queue_stats;
}

/** @param {Board} board @param {string} ext */
const agentOf = (board, ext) => board.agents.find((a) => a.extension === ext);

/** @param {Board} board @param {Obj} agent @param {string} state @param {string | null} linkedid @param {string} at */
function phone(board, agent, state, linkedid, at) {
  board.touched.agents.add(agent.user_id);
  const free = state === "free";
  agent.state = free ? (agent.on_duty ? "free" : "off duty") : state;
  agent.linkedid = free ? null : linkedid;
  agent.since = at;
}

/**
 * Apply one frame of the supervisors' channel. Returns what changed ("calls", "agents",
 * "finished": the day's tables are stale) so the page redraws only that.
 * @param {Board} board
 * @param {{ type: string, payload?: any, at?: string }} msg
 * @returns {Set<string>}
 */
export function applyMessage(board, msg) {
  const p = msg.payload || {};
  const at = msg.at || new Date().toISOString();
  const changed = new Set();
  const id = p.linkedid;
  if (msg.type.startsWith("call.") && id) {
    board.touched.calls.add(id);
    if (msg.type === "call.hung_up" || msg.type === "call.ended") {
      // hung up: off the board at once; ended (logged) also makes the day's tables stale
      board.calls.delete(id);
      for (const a of board.agents) if (a.linkedid === id) phone(board, a, "free", null, at);
      changed.add("calls").add("agents");
      if (msg.type === "call.ended") changed.add("finished");
      return changed;
    }
    const before = board.calls.get(id) || {};
    // the supervisors' summary leaves lists out: keep the ringing list the call had
    board.calls.set(id, { ...before, ...(p.call || {}), linkedid: id });
    changed.add("calls");
    const exts = p.extensions || [];
    if (msg.type === "call.ringing") {
      for (const e of exts) { const a = agentOf(board, e); if (a) phone(board, a, "ringing", id, at); }
      const call = board.calls.get(id);
      if (call) call.ringing = [...new Set([...(before.ringing || []), ...exts])];
      changed.add("agents");
    } else if (msg.type === "call.ring_ended") {
      for (const e of exts) {
        const a = agentOf(board, e);
        if (a && a.linkedid === id && a.state === "ringing") phone(board, a, "free", null, at);
      }
      const call = board.calls.get(id);
      if (call) call.ringing = (call.ringing || []).filter((/** @type {string} */ e) => !exts.includes(e));
      changed.add("agents");
    } else if (msg.type === "call.answered") {
      for (const a of board.agents) {
        if (a.linkedid === id && a.state === "ringing" && a.extension !== p.answered_by) phone(board, a, "free", null, at);
      }
      const a = p.answered_by ? agentOf(board, p.answered_by) : null;
      if (a) phone(board, a, "talking", id, at);
      const call = board.calls.get(id);
      if (call) call.ringing = [];
      changed.add("agents");
    } else if (msg.type === "call.transferred") {
      const a = p.from_extension ? agentOf(board, p.from_extension) : null;
      if (a && a.linkedid === id) phone(board, a, "free", null, at);
      changed.add("agents");
    }
    return changed;
  }
  if (msg.type === "agent.presence") {
    const a = board.agents.find((x) => x.user_id === p.user_id);
    if (a) {
      a.presence = p.state;
      a.presence_reason = p.reason;
      a.presence_since = p.since;
      a.wrapup_until = p.state === "wrapup" ? p.until : null;
      board.touched.agents.add(a.user_id);
      changed.add("agents");
    }
  }
  return changed;
}

/**
 * Who waits now: inbound calls not yet answered, longest first, numbered per queue by when
 * they joined it (as crm_core.reports.service.waiting_callers).
 * @param {Board} board
 */
export function waiting(board) {
  const list = [...board.calls.values()]
    .filter((c) => c.direction === "inbound" && (c.state === "waiting" || c.state === "ringing"))
    .map((c) => ({ ...c }));
  list.sort((a, b) => String(a.started_at || "").localeCompare(String(b.started_at || "")));
  /** @type {Record<string, number>} */
  const ahead = {};
  const queued = list.filter((c) => c.queue).sort((a, b) => String(a.queued_at || "").localeCompare(String(b.queued_at || "")));
  for (const c of queued) c.position = ahead[c.queue] = (ahead[c.queue] || 0) + 1;
  return list;
}
