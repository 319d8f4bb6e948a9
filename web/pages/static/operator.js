// The operator's workspace: live screen-pops over the websocket, the client card and the deal.
//
// Delivery: one websocket /ws?token=…&last_seq=N. Every event carries a seq; the last seq seen is
// kept in localStorage, so a reconnect (or a reload) asks the server for exactly what was missed.
// The pop on screen is kept in localStorage too: a reload while the phone rings shows it again at
// once, and the replay from last_seq then brings it up to date (answered, ended…).
"use strict";
(function () {
  // ------------------------------------------------------------------ state and storage
  const token = localStorage.getItem("crm_token");
  let user = null;
  try { user = JSON.parse(localStorage.getItem("crm_user") || "null"); } catch (e) { user = null; }
  if (!token || !user) { location.replace("/"); return; }

  const KEY_SEQ = `crm_last_seq:${user.id}`;
  const KEY_POP = `crm_pop:${user.id}`;
  const KEY_CALLS = `crm_calls:${user.id}`;
  const POP_MAX_AGE_MS = 60 * 60 * 1000; // a restored pop older than this is stale
  const ALERT_MAX_AGE_MS = 30 * 1000; // replayed ringing older than this pops silently
  // the server pings every 20 s; silence much longer means a dead link nobody closed (sleep,
  // Wi-Fi change, NAT timeout): give up on that socket rather than wait for TCP to notice
  const SILENCE_MS = 55 * 1000;

  const S = {
    lastSeq: Number(localStorage.getItem(KEY_SEQ) || 0) || 0,
    seen: new Set(),          // recent seqs: a replay overlapping live delivery is applied once
    pop: loadJSON(KEY_POP),   // {linkedid, state, call, card, new_client, number, at, result}
    calls: loadJSON(KEY_CALLS) || [], // [{linkedid, state, name, number, at, status, talk}]
    stages: [],
    panel: null,              // {clientId, dealId, client, deal}
    ws: null,
    attempt: 0,
    timer: null,
    stopped: false,
    // server position when this socket subscribed: frames up to it are a replay of missed ones
    replayUntil: 0,
    // no stored seq: the first socket replays what the server still keeps (about 15 minutes),
    // so a page opened while the phone rings shows the pop; calls already over pop nothing
    freshStart: !localStorage.getItem(KEY_SEQ),
  };
  // diagnostics and test hooks (read-only use; `drop()` closes the socket like a network loss)
  const diag = {
    log: [],                  // [{type, seq, linkedid, at: Date.now()}]
    popRenderedAt: {},        // linkedid -> Date.now() when its ringing pop was first rendered
    popStateAtRender: {},     // linkedid -> call state shown at that moment
    connects: 0,
    beeps: 0,                 // ring sounds played
    notifications: [],        // desktop notifications shown: [{title, body}]
    drop() { if (S.ws) S.ws.close(4000, "test drop"); },
    get lastSeq() { return S.lastSeq; },
    get connected() { return !!S.ws && S.ws.readyState === WebSocket.OPEN; },
  };
  window.__crm = diag;

  function loadJSON(key) {
    try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function saveJSON(key, value) {
    try {
      if (value == null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* storage full or disabled: the page still works, reloads just lose the pop */ }
  }

  // ------------------------------------------------------------------ small DOM helpers
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const child of children) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function fill(list, items, empty) {
    list.replaceChildren(...(items.length ? items : [el("li", { class: "empty", text: empty })]));
  }
  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const today = new Date().toDateString() === d.toDateString();
    return today
      ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
      : d.toLocaleString([], { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
  }
  function fmtDuration(seconds) {
    if (seconds == null) return "";
    const s = Math.round(Number(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  function fmtMoney(amount, currency) {
    const n = Number(amount);
    if (!Number.isFinite(n)) return amount || "";
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "RUB", maximumFractionDigits: 0 }).format(n);
    } catch (e) { return `${n} ${currency || ""}`; }
  }
  function setStatus(node, text, isError) {
    node.textContent = text;
    node.classList.toggle("error", !!isError);
  }
  // datetime-local wants local wall time without zone
  function localInputValue(date) {
    const p = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}:${p(date.getMinutes())}`;
  }

  // ------------------------------------------------------------------ REST
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: `Bearer ${token}` }, opts.headers);
    if (opts.json !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    const res = await fetch(path, opts);
    if (res.status === 401) { logout(); throw new Error("signed out"); }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const detail = data && data.detail;
      throw new Error(typeof detail === "string" ? detail : `${res.status} ${res.statusText}`);
    }
    return data;
  }
  const items = (data) => (Array.isArray(data) ? data : (data && (data.items || data.events)) || []);

  // Sign-out ends the session on the server (POST /api/auth/logout), so the token is dead even if
  // someone copied it; after a 401 there is nothing left to end.
  function logout(endSession) {
    if (endSession === true) {
      fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` }, keepalive: true }).catch(() => {});
    }
    S.stopped = true;
    if (S.ws) S.ws.close(1000, "sign out");
    localStorage.removeItem("crm_token");
    localStorage.removeItem("crm_user");
    location.replace("/");
  }

  // ------------------------------------------------------------------ sound and desktop alerts
  let audio = null;
  function unlockAudio() {
    // browsers start audio only after a user gesture: create/resume the context on the first one
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") audio.resume().catch(() => {});
    } catch (e) { audio = null; }
  }
  ["click", "keydown"].forEach((t) => document.addEventListener(t, unlockAudio, { passive: true }));
  function beep() {
    try {
      unlockAudio();
      if (!audio) return;
      diag.beeps += 1;
      const t0 = audio.currentTime;
      for (const start of [0, 0.35]) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = 880;
        gain.gain.setValueAtTime(0.0001, t0 + start);
        gain.gain.exponentialRampToValueAtTime(0.25, t0 + start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t0 + start + 0.25);
        osc.connect(gain).connect(audio.destination);
        osc.start(t0 + start);
        osc.stop(t0 + start + 0.3);
      }
    } catch (e) { /* no audio device: the pop still shows */ }
  }
  function desktopNotify(title, body, tag) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const n = new Notification(title, { body, tag, renotify: true, requireInteraction: false });
      diag.notifications.push({ title, body });
      n.onclick = () => { window.focus(); n.close(); };
    } catch (e) { /* some platforms only allow notifications from a service worker */ }
  }
  function setupNotifyButton() {
    const btn = $("notify-enable");
    btn.hidden = !("Notification" in window) || Notification.permission !== "default";
    btn.onclick = async () => {
      unlockAudio();
      try { await Notification.requestPermission(); } catch (e) { /* ignored */ }
      setupNotifyButton();
    };
  }

  // ------------------------------------------------------------------ the websocket
  function setConn(state, text) {
    const c = $("conn");
    c.dataset.state = state;
    c.textContent = text;
  }
  function connect() {
    if (S.stopped) return;
    clearTimeout(S.timer);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    setConn("connecting", S.attempt ? `reconnecting… (${S.attempt})` : "connecting…");
    let ws;
    try { ws = new WebSocket(`${proto}//${location.host}/ws`); } catch (e) { scheduleReconnect(); return; }
    S.ws = ws;
    S.lastHeard = Date.now();
    ws.onopen = () => {
      // the token in the first message, not in the URL: URLs end up in logs
      ws.send(JSON.stringify({ token, last_seq: S.lastSeq }));
      if (diag.connects > 0) S.freshStart = false; // a reconnect replays what was missed live
      S.attempt = 0;
      diag.connects += 1;
      setConn("open", "live");
    };
    ws.onmessage = (ev) => {
      S.lastHeard = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "ping") {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "pong" }));
        return;
      }
      if (msg.type === "subscribed") {
        S.replayUntil = Number(msg.last_seq) || 0;
        return;
      }
      if (msg.type === "replay.truncated") {
        // more was missed than the socket replays: page through the REST catch-up instead
        catchUp(Number(msg.after) || 0);
        return;
      }
      if (msg.type === "pong") return;
      onEvent(msg);
    };
    ws.onclose = (ev) => {
      if (S.ws === ws) S.ws = null;
      if (S.stopped) return;
      if (ev.code === 4401) { logout(); return; } // the token is no longer valid
      if (ev.code === 4403) { setConn("denied", "not allowed"); return; }
      scheduleReconnect();
    };
    ws.onerror = () => { /* onclose follows and schedules the retry */ };
  }
  function scheduleReconnect() {
    S.attempt += 1;
    // 0.5, 1, 2, 4, 8, 10 s… with jitter, so a restarted server is not hit by every page at once
    const base = Math.min(10000, 500 * 2 ** (S.attempt - 1));
    const delay = base / 2 + Math.random() * base / 2;
    setConn("closed", `offline, retrying in ${Math.ceil(delay / 1000)} s`);
    clearTimeout(S.timer);
    S.timer = setTimeout(connect, delay);
  }
  setInterval(() => {
    const ws = S.ws;
    if (!ws || S.stopped || Date.now() - S.lastHeard < SILENCE_MS) return;
    ws.onclose = ws.onmessage = ws.onerror = null;
    try { ws.close(4000, "no ping"); } catch (e) { /* already closing */ }
    S.ws = null;
    scheduleReconnect();
  }, 5000);
  // back from sleep or a network change: try now instead of waiting out the backoff
  window.addEventListener("online", () => { if (!S.ws) { S.attempt = 0; connect(); } });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !S.ws && !S.stopped) connect();
  });

  // Missed events over REST, page by page (the socket said its replay would be too long).
  async function catchUp(after) {
    try {
      for (let round = 0; round < 50; round += 1) {
        const data = await api(`/api/events?after=${after}`);
        for (const msg of items(data)) onEvent(msg, { replayed: true });
        after = Number(data.last_seq) || after;
        if (!data.more) break;
      }
      if (after > S.lastSeq) {
        S.lastSeq = after;
        localStorage.setItem(KEY_SEQ, String(after));
      }
    } catch (e) { /* the next reconnect replays from last_seq again */ }
  }

  // ------------------------------------------------------------------ events
  function onEvent(msg, opts) {
    const replayed = !!(opts && opts.replayed) || (typeof msg.seq === "number" && msg.seq <= S.replayUntil);
    if (typeof msg.seq === "number") {
      if (S.seen.has(msg.seq)) return;
      S.seen.add(msg.seq);
      if (S.seen.size > 2000) S.seen = new Set([...S.seen].slice(-1000));
      if (msg.seq > S.lastSeq) {
        S.lastSeq = msg.seq;
        localStorage.setItem(KEY_SEQ, String(msg.seq));
      }
    }
    const p = msg.payload || {};
    const linkedid = p.linkedid || (p.call && p.call.linkedid) || null;
    diag.log.push({ type: msg.type, seq: msg.seq, linkedid, at: Date.now(), replayed,
      answered_at: (p.call && p.call.answered_at) || null });
    if (diag.log.length > 500) diag.log.splice(0, 250);
    // pops are for this operator's phone; a staff socket also gets the supervisors' board
    const mine = !msg.channel || !msg.type.startsWith("call.") || msg.channel === `ext:${user.extension}`;
    if (!mine) return;
    switch (msg.type) {
      case "call.ringing": return onRinging(msg, p, linkedid, replayed);
      // a call this phone placed (click-to-call or dialled by hand) is under way
      case "call.started":
        if (p.call && p.call.direction === "outbound") onCallState(linkedid, "calling", p);
        return;
      case "call.answered": return onCallState(linkedid, "answered", p);
      // this phone stopped ringing (the caller went on to the queue or someone else)
      case "call.ring_ended": return onCallState(linkedid, "missed", p);
      case "call.transferred": return onCallState(linkedid, "transferred", p);
      case "call.ended": return onEnded(linkedid, p, replayed);
      case "originate.failed":
        setStatus($("client-status"), `Call failed: ${p.reason || "no reason given"}`, true);
        return;
      case "task.created":
        if (S.panel && p.client_id === S.panel.clientId) loadTasks();
        return;
      case "message.received": // SMS/email from a client of mine: say so, refresh their timeline
        setStatus($("message-status"), `New ${p.kind === "sms" ? "SMS" : "email"} from ${p.client_name || p.from || "a client"}${p.sender_verified === false ? " (unverified sender)" : ""}: ${p.subject || p.preview || ""}`);
        if (S.panel && p.client_id === S.panel.clientId) loadTimeline();
        return;
      case "message.status":
        if (S.panel && p.client_id === S.panel.clientId) loadTimeline();
        if (p.status === "failed") setStatus($("message-status"), `Not sent to ${p.to || "the client"}: ${p.error || "failed"}`, true);
        return;
      default:
        return;
    }
  }

  function callNumber(call) {
    if (!call) return "";
    if (call.client_number) return call.client_number; // E.164, as the card shows it
    return call.direction === "outbound" ? call.did_or_dialled || "" : call.caller_number || "";
  }
  // what the list of recent calls needs of a call it may not have seen ring
  function callFacts(call) {
    if (!call) return {};
    return {
      number: callNumber(call), name: call.client_name || null, at: call.started_at || null,
      clientId: call.client_id || null, dealId: call.deal_id || null,
    };
  }

  function onRinging(msg, p, linkedid, replayed) {
    const known = S.calls.find((c) => c.linkedid === linkedid);
    if (known && known.state === "ended") return; // a late replay of a call already over
    const call = p.call || {};
    const card = p.card || {};
    const client = card.client || null;
    const number = callNumber(call);
    const already = S.pop && S.pop.linkedid === linkedid;
    if (!already) resetResultForm(); // a note typed for the last caller must not land on this one
    S.pop = {
      linkedid,
      state: "ringing",
      call,
      card,
      new_client: !!p.new_client,
      number,
      at: msg.at || new Date().toISOString(),
      shownAt: Date.now(),
    };
    saveJSON(KEY_POP, S.pop);
    renderPop();
    if (!(linkedid in diag.popRenderedAt)) {
      diag.popRenderedAt[linkedid] = Date.now();
      diag.popStateAtRender[linkedid] = $("pop").dataset.state;
    }
    trackCall(linkedid, { state: "ringing", name: client ? client.name : null, number, at: call.started_at || msg.at,
      clientId: client ? client.id : null, dealId: card.deal ? card.deal.id : null });
    const fresh = !msg.at || Date.now() - Date.parse(msg.at) < ALERT_MAX_AGE_MS;
    if (fresh && !already) {
      const alert = () => {
        if (!S.pop || S.pop.linkedid !== linkedid || S.pop.state !== "ringing") return;
        beep();
        const who = client ? [client.name, client.company].filter(Boolean).join(", ") : number || "unknown number";
        desktopNotify(p.new_client ? "Incoming call — new client" : "Incoming call", who, linkedid || "call");
      };
      // live: at once; replayed after a reconnect: only if the rest of the replay leaves it ringing
      if (replayed) setTimeout(alert, 300);
      else alert();
    }
    if (p.new_client && client && !already && !replayed) openClient(client.id, card.deal ? card.deal.id : null, { focusName: true });
  }

  function onCallState(linkedid, state, p) {
    trackCall(linkedid, Object.assign(callFacts(p.call), { state }));
    if (p.call && p.call.direction === "outbound" && (state === "calling" || state === "answered")) {
      // the click-to-call's "Ringing your phone…" is over: say where the call stands
      setStatus($("client-status"), `${state === "calling" ? "Calling" : "On the call with"} ${callNumber(p.call)}`);
    }
    if (S.pop && S.pop.linkedid === linkedid) {
      S.pop.state = state;
      if (p.call) S.pop.call = Object.assign({}, S.pop.call, p.call);
      saveJSON(KEY_POP, S.pop);
      renderPopState();
    }
  }

  function onEnded(linkedid, p, replayed) {
    const known = S.calls.some((c) => c.linkedid === linkedid);
    trackCall(linkedid, Object.assign(known ? {} : { number: p.client_number, at: new Date().toISOString() },
      { state: "ended", status: endedFor(p), talk: answeredElsewhere(p) ? null : p.talk_seconds }));
    if (S.pop && S.pop.linkedid === linkedid && replayed && S.freshStart) {
      // a page opened after the call: its history, not something to answer
      S.pop = null;
      saveJSON(KEY_POP, null);
      renderPop();
    } else if (S.pop && S.pop.linkedid === linkedid) {
      S.pop.state = "ended";
      S.pop.status = endedFor(p);
      saveJSON(KEY_POP, S.pop);
      renderPopState();
    }
    // the call is in the database now: refresh what shows it
    if (S.panel && p.client_id && p.client_id === S.panel.clientId) {
      loadTimeline();
      loadTasks();
    }
  }

  // how a call ended, for this phone: "answered" by someone else is not this phone's call
  function answeredElsewhere(p) {
    return p.status === "answered" && !!p.answered_by && p.answered_by !== user.extension;
  }
  function endedFor(p) {
    return answeredElsewhere(p) ? `answered by ${p.answered_by}` : p.status;
  }

  function trackCall(linkedid, fields) {
    if (!linkedid) return;
    let row = S.calls.find((c) => c.linkedid === linkedid);
    if (!row) {
      row = { linkedid };
      S.calls.unshift(row);
      S.calls.length = Math.min(S.calls.length, 30);
    }
    for (const [k, v] of Object.entries(fields)) if (v != null) row[k] = v;
    saveJSON(KEY_CALLS, S.calls);
    renderCalls();
  }

  // ------------------------------------------------------------------ rendering the pop
  const STATE_LABEL = { ringing: "Ringing", calling: "Calling", answered: "On the call", transferred: "Transferred", ended: "Ended", missed: "Stopped ringing" };

  function renderPop() {
    const pop = S.pop;
    $("pop").hidden = !pop;
    $("idle").hidden = !!pop;
    if (!pop) { markPanel(); return; }
    const card = pop.card || {};
    const client = card.client;
    const deal = card.deal;
    $("pop-name").textContent = client ? client.name : (pop.call && pop.call.caller_name) || "Unknown caller";
    $("pop-company").textContent = client && client.company ? client.company : "";
    $("pop-number").textContent = pop.number || "";
    $("pop-new").hidden = !pop.new_client;
    $("pop-phones").textContent = client && client.phones && client.phones.length ? client.phones.join(", ") : pop.number || "—";
    $("pop-responsible").textContent = client && client.responsible ? client.responsible.name || `user ${client.responsible.id}` : "—";
    const dealNode = $("pop-deal");
    if (deal) {
      dealNode.replaceChildren(
        el("span", { class: "strong", text: deal.title }), " · ",
        el("span", { "data-testid": "pop-deal-stage", id: "pop-deal-stage", text: deal.stage || "" }), " · ",
        el("span", { "data-testid": "pop-deal-amount", id: "pop-deal-amount", text: fmtMoney(deal.amount, deal.currency) }),
      );
    } else {
      dealNode.textContent = "no open deal";
    }
    fill($("pop-recent"), (card.recent || []).slice(0, 5).map((c) => el("li", {},
      el("span", { class: "muted", text: fmtTime(c.at) }), " ",
      c.kind === "call" ? `${c.direction === "in" ? "↙ in" : "↗ out"} call, ${c.status}${c.talk_seconds ? `, ${fmtDuration(c.talk_seconds)}` : ""}` : `${c.kind}${c.subject ? `: ${c.subject}` : ""}`,
    )), "nothing yet");
    fill($("pop-tasks"), (card.tasks || []).map((t) => el("li", {},
      t.title, t.due_at ? el("span", { class: "muted", text: ` · ${fmtTime(t.due_at)}` }) : null,
    )), "none");
    $("pop-open").disabled = !client;
    $("result-save").disabled = !client;
    renderPopState();
  }

  // the card beside a live pop should be the caller's; when it is not, say so (a note or a stage
  // move meant for the caller must not go to the card that happens to be open)
  function markPanel() {
    const pop = S.pop;
    const caller = pop && pop.state !== "ended" && pop.card && pop.card.client;
    const other = !!(caller && S.panel && S.panel.clientId !== caller.id);
    $("panel-other").hidden = !other;
    if (other) $("panel-other-name").textContent = caller.name;
  }
  $("panel-other-open").onclick = () => $("pop-open").onclick();

  function renderPopState() {
    markPanel();
    if (!S.pop) return;
    const pop = $("pop");
    pop.dataset.state = S.pop.state;
    let label = STATE_LABEL[S.pop.state] || S.pop.state;
    if (S.pop.state === "ended" && S.pop.status) label = `Ended · ${S.pop.status}`;
    $("pop-state").textContent = label;
  }

  function renderCalls() {
    fill($("calls"), S.calls.map((c) => {
      const li = el("li", { "data-linkedid": c.linkedid, "data-state": c.state, class: c.clientId ? "link" : null },
        el("span", { class: "muted", text: fmtTime(c.at) }), " ",
        c.name || c.number || "unknown", " — ",
        c.state === "ended" ? `${c.status || "ended"}${c.talk ? `, ${fmtDuration(c.talk)}` : ""}` : STATE_LABEL[c.state] || c.state,
      );
      if (c.clientId) li.onclick = () => openClient(c.clientId, c.dealId || null);
      return li;
    }), "no calls yet");
  }

  $("pop-close").onclick = () => { S.pop = null; saveJSON(KEY_POP, null); renderPop(); };
  $("pop-open").onclick = () => {
    const card = S.pop && S.pop.card;
    if (card && card.client) openClient(card.client.id, card.deal ? card.deal.id : null);
  };

  // A client has at most one open callback (a missed call makes one by itself): move that one
  // to the new time rather than fail on a second.
  async function setCallback(clientId, dealId, title, dueIso) {
    const open = await api(`/api/tasks?client_id=${clientId}&open_only=true`);
    const existing = open.find((t) => t.kind === "callback");
    if (existing) {
      return api(`/api/tasks/${existing.id}`, { method: "PATCH", json: { title, due_at: dueIso } });
    }
    return api("/api/tasks", { method: "POST", json: {
      title, kind: "callback", due_at: dueIso, client_id: clientId, deal_id: dealId,
    } });
  }

  // ------------------------------------------------------------------ result of the call
  const resultSelect = $("result-select");
  function resetResultForm() {
    $("result-note").value = "";
    resultSelect.value = "";
    $("result-callback-at").value = "";
    resultSelect.onchange();
    setStatus($("result-status"), "");
  }
  resultSelect.onchange = () => {
    const later = resultSelect.value === "call back later";
    const at = $("result-callback-at");
    at.hidden = !later;
    at.required = later;
    if (later && !at.value) at.value = localInputValue(new Date(Date.now() + 60 * 60 * 1000));
  };
  $("result-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const card = S.pop && S.pop.card;
    if (!card || !card.client) return;
    const status = $("result-status");
    const result = resultSelect.value;
    const label = resultSelect.selectedOptions[0].textContent;
    const clientId = card.client.id;
    const dealId = card.deal ? card.deal.id : null;
    $("result-save").disabled = true;
    try {
      await api("/api/notes", { method: "POST", json: {
        client_id: clientId, deal_id: dealId, result,
        body: $("result-note").value.trim() || label,
      } });
      if (result === "call back later") {
        const when = $("result-callback-at").value;
        await setCallback(clientId, dealId, `Call back ${card.client.name}`, new Date(when).toISOString());
      }
      if (result === "deal won" && dealId) {
        const won = S.stages.find((s) => s.is_won);
        if (won) await api(`/api/deals/${dealId}/stage`, { method: "POST", json: { stage_id: won.id } });
      }
      setStatus(status, "Saved");
      $("result-note").value = "";
      resultSelect.value = "";
      resultSelect.onchange();
      if (S.panel && S.panel.clientId === clientId) refreshPanel();
      if (result === "call back later") refreshPopTasks(clientId);
    } catch (e) {
      setStatus(status, e.message, true);
    } finally {
      $("result-save").disabled = false;
    }
  };

  // the pop's "open tasks" came with the call: a callback set since then belongs there too
  async function refreshPopTasks(clientId) {
    try {
      const tasks = await api(`/api/tasks?client_id=${clientId}&open_only=true`);
      const card = S.pop && S.pop.card;
      if (!card || !card.client || card.client.id !== clientId) return;
      card.tasks = tasks.map((t) => ({ title: t.title, due_at: t.due_at }));
      saveJSON(KEY_POP, S.pop);
      renderPop();
    } catch (e) { /* the card panel shows the tasks anyway */ }
  }

  // ------------------------------------------------------------------ client card and deal panel
  async function openClient(clientId, dealId, opts) {
    S.panel = { clientId, dealId, client: null, deal: null };
    $("panel").hidden = false;
    markPanel();
    await refreshPanel();
    if (opts && opts.focusName) {
      const name = $("client-name");
      name.focus();
      name.select();
    }
  }

  async function refreshPanel() {
    if (!S.panel) return;
    await Promise.all([loadClient(), loadDeal(), loadTimeline(), loadTasks()]);
  }

  async function loadClient() {
    const panel = S.panel;
    try {
      const c = await api(`/api/clients/${panel.clientId}`);
      if (S.panel !== panel) return;
      panel.client = c;
      $("client-id").textContent = `#${c.id}`;
      $("client-name").value = c.name || "";
      $("client-company").value = c.company || "";
      $("client-phones").value = (c.phones || []).map((p) => p.number).join("\n");
      $("client-emails").value = (c.emails || []).join("\n");
      $("client-notes").value = c.notes || "";
      setStatus($("client-status"), "");
    } catch (e) { setStatus($("client-status"), e.message, true); }
  }

  async function loadDeal() {
    const panel = S.panel;
    try {
      let deal = null;
      if (panel.dealId) deal = await api(`/api/deals/${panel.dealId}`);
      else {
        const open = await api(`/api/deals?client_id=${panel.clientId}&open_only=true&limit=1`);
        deal = open[0] || null;
      }
      if (S.panel !== panel) return;
      panel.deal = deal;
      panel.dealId = deal ? deal.id : null;
      $("deal-id").textContent = deal ? `#${deal.id}` : "";
      $("deal-title").textContent = deal ? deal.title : "No open deal";
      $("deal-amount").textContent = deal ? fmtMoney(deal.amount, deal.currency) : "";
      const select = $("deal-stage");
      select.replaceChildren(...S.stages.map((s) => el("option", { value: String(s.id), text: s.name })));
      if (deal) select.value = String(deal.stage_id);
      $("stage-form").hidden = !deal;
      setStatus($("deal-status"), "");
    } catch (e) { setStatus($("deal-status"), e.message, true); }
  }

  async function loadTimeline() {
    const panel = S.panel;
    if (!panel) return;
    try {
      const data = await api(`/api/clients/${panel.clientId}/communications?limit=50`);
      if (S.panel !== panel) return;
      const shown = items(data);
      fill($("timeline"), shown.map(timelineItem), "no communications yet");
      // players of calls no longer on the card are let go
      const ids = new Set(shown.map((c) => c.id));
      for (const id of players.keys()) if (!ids.has(id)) players.delete(id);
    } catch (e) { fill($("timeline"), [], e.message); }
  }

  // A call's player survives the timeline being redrawn (a new call, a note): the same node is
  // put back, so listening is not cut short.
  const players = new Map(); // communication id -> the recording's element
  function recordingOf(c) {
    if (!c.recording) return null;
    if (!players.has(c.id)) players.set(c.id, window.CrmRecordings.element(c.id, c.recording, token));
    return players.get(c.id);
  }

  function timelineItem(c) {
    let what;
    if (c.kind === "call") {
      const dir = c.direction === "in" ? "↙ Inbound call" : "↗ Outbound call";
      const bits = [c.status];
      if (c.talk_seconds) bits.push(`talk ${fmtDuration(c.talk_seconds)}`);
      if (c.hold_seconds) bits.push(`on hold ${fmtDuration(c.hold_seconds)}`);
      if (c.ring_seconds != null) bits.push(`ring ${fmtDuration(c.ring_seconds)}`);
      if (c.agent_extension) bits.push(`ext ${c.agent_extension}`);
      if (c.phone) bits.push(c.phone);
      what = [el("span", { class: "kind", text: dir }), " ", el("span", { class: "muted", text: bits.join(" · ") }), recordingOf(c)];
    } else if (c.kind === "note") {
      const result = c.extra && c.extra.result;
      what = [el("span", { class: "kind", text: "Note" }), result ? el("span", { class: "badge", text: ` ${result}` }) : null,
        el("div", { class: "tl-body", text: c.body || "" })];
    } else {
      // an inbound email's From is only a claim: say so unless the relay verified it
      const unverified = c.sender_verified === false
        ? el("span", { class: "badge unverified", "data-testid": "unverified", title: "SPF/DKIM did not confirm the sender: the From address may be forged", text: "unverified sender" })
        : null;
      what = [el("span", { class: "kind", text: `${c.kind.toUpperCase()} ${c.direction === "in" ? "in" : "out"}` }), " ",
        el("span", { class: "muted", text: c.status }), unverified ? " " : null, unverified, c.subject ? el("div", { text: c.subject }) : null,
        c.body ? el("div", { class: "tl-body", text: c.body }) : null];
    }
    return el("li", { class: "tl-item", "data-kind": c.kind, "data-status": c.status, "data-direction": c.direction, "data-id": String(c.id) },
      el("span", { class: "tl-when", text: fmtTime(c.occurred_at) }), el("div", { class: "tl-what" }, ...what));
  }

  async function loadTasks() {
    const panel = S.panel;
    if (!panel) return;
    try {
      const rows = await api(`/api/tasks?client_id=${panel.clientId}&open_only=true`);
      if (S.panel !== panel) return;
      fill($("tasks"), rows.map((t) => el("li", { "data-kind": t.kind, class: t.overdue ? "error" : "" },
        t.title, t.due_at ? el("span", { class: "muted", text: ` · ${fmtTime(t.due_at)}` }) : null)), "no open tasks");
    } catch (e) { fill($("tasks"), [], e.message); }
  }

  const lines = (text) => text.split(/[\n,;]+/).map((s) => s.trim()).filter(Boolean);

  $("client-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const panel = S.panel;
    if (!panel) return;
    const labels = Object.fromEntries(((panel.client && panel.client.phones) || []).map((p) => [p.number, p.label]));
    const body = {
      name: $("client-name").value.trim(),
      company: $("client-company").value.trim() || null,
      notes: $("client-notes").value,
      phones: lines($("client-phones").value).map((n) => ({ number: n, label: labels[n] || null })),
      emails: lines($("client-emails").value),
    };
    try {
      const c = await api(`/api/clients/${panel.clientId}`, { method: "PATCH", json: body });
      panel.client = c;
      setStatus($("client-status"), "Saved");
      // keep the pop in step with the card it shows
      if (S.pop && S.pop.card && S.pop.card.client && S.pop.card.client.id === c.id) {
        Object.assign(S.pop.card.client, { name: c.name, company: c.company, phones: c.phones.map((p) => p.number), emails: c.emails, notes: c.notes });
        saveJSON(KEY_POP, S.pop);
        renderPop();
      }
    } catch (e) { setStatus($("client-status"), e.message, true); }
  };

  $("stage-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const panel = S.panel;
    if (!panel || !panel.dealId) return;
    const stageId = Number($("deal-stage").value);
    try {
      const d = await api(`/api/deals/${panel.dealId}/stage`, { method: "POST", json: { stage_id: stageId } });
      setStatus($("deal-status"), `Moved to ${d.stage || S.stages.find((s) => s.id === stageId).name}`);
      if (S.pop && S.pop.card && S.pop.card.deal && S.pop.card.deal.id === d.id) {
        S.pop.card.deal.stage = d.stage || (S.stages.find((s) => s.id === stageId) || {}).name;
        S.pop.card.deal.stage_id = stageId;
        saveJSON(KEY_POP, S.pop);
        renderPop();
      }
    } catch (e) { setStatus($("deal-status"), e.message, true); }
  };

  $("task-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const panel = S.panel;
    if (!panel) return;
    const name = panel.client ? panel.client.name : "client";
    try {
      await setCallback(panel.clientId, panel.dealId, $("task-title").value.trim() || `Call back ${name}`,
        new Date($("task-due").value).toISOString());
      setStatus($("task-status"), "Callback set");
      $("task-title").value = "";
      loadTasks();
    } catch (e) { setStatus($("task-status"), e.message, true); }
  };

  // SMS and email from the card: queued now, sent by the server; the timeline shows the status
  async function sendMessage(path, json, done) {
    const panel = S.panel;
    if (!panel) return;
    try {
      const c = await api(`/api/clients/${panel.clientId}/${path}`, { method: "POST", json });
      setStatus($("message-status"), `${path === "sms" ? "SMS" : "Email"} to ${c.phone || c.email} queued`);
      done();
      loadTimeline();
    } catch (e) { setStatus($("message-status"), e.message, true); }
  }
  $("sms-form").onsubmit = (ev) => {
    ev.preventDefault();
    sendMessage("sms", { text: $("sms-text").value }, () => { $("sms-text").value = ""; });
  };
  $("email-form").onsubmit = (ev) => {
    ev.preventDefault();
    sendMessage("email", { subject: $("email-subject").value, body: $("email-body").value },
      () => { $("email-subject").value = ""; $("email-body").value = ""; });
  };

  // finding a card without a call: by name or company, by phone in any written form, or, with
  // nothing typed, the clients this user is responsible for
  const PHONE_LIKE = /^[+\d\s().-]+$/;
  $("find-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const q = $("find-q").value.trim();
    const digits = q.replace(/\D/g, "").length;
    let query = `responsible_id=${user && user.id}`;
    if (q) query = PHONE_LIKE.test(q) && digits >= 5 ? `phone=${encodeURIComponent(q)}` : `q=${encodeURIComponent(q)}`;
    try {
      const page = await api(`/api/clients?${query}&limit=20`);
      fill($("find-results"), page.items.map((c) => {
        const li = el("li", { "data-client-id": String(c.id), class: "link" },
          el("span", { class: "strong", text: c.name }),
          c.company ? ` · ${c.company}` : "",
          (c.phones || []).length ? el("span", { class: "muted", text: ` · ${c.phones[0].number}` }) : null);
        li.onclick = () => openClient(c.id, null);
        return li;
      }), q ? "nobody found" : "no clients of yours yet");
    } catch (e) {
      fill($("find-results"), [el("li", { class: "error", text: e.message })], "");
    }
  };

  // click-to-call: the operator's phone rings first, then the client's (logged on this deal)
  $("client-call").onclick = async () => {
    const panel = S.panel;
    if (!panel) return;
    try {
      const r = await api("/api/calls/originate", {
        method: "POST", json: { client_id: panel.clientId, deal_id: panel.dealId || null },
      });
      setStatus($("client-status"), `Ringing your phone (${r.extension}), then ${r.number}…`);
    } catch (e) { setStatus($("client-status"), e.message, true); }
  };

  // ------------------------------------------------------------------ start
  $("logout").onclick = () => logout(true);
  $("me").textContent = `${user.full_name || user.login}${user.extension ? ` · ext ${user.extension}` : ""}`;
  $("task-due").value = localInputValue(new Date(Date.now() + 60 * 60 * 1000));
  setupNotifyButton();

  // a pop restored from before the reload shows at once; the replay from last_seq updates it
  if (S.pop && (!S.pop.shownAt || Date.now() - S.pop.shownAt > POP_MAX_AGE_MS)) S.pop = null;
  renderPop();
  renderCalls();
  connect();
  api("/api/auth/me").then((me) => {
    user = me;
    localStorage.setItem("crm_user", JSON.stringify(me));
    $("me").textContent = `${me.full_name || me.login}${me.extension ? ` · ext ${me.extension}` : ""}`;
  }).catch(() => {});
  api("/api/stages").then((stages) => {
    S.stages = stages;
    if (S.panel) loadDeal();
  }).catch(() => {});
})();
