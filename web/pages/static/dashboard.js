// The dashboard page's script: a file of its own, so the Content-Security-Policy allows
// scripts from this service only (no inline script).
"use strict";
(function () {
  const token = localStorage.getItem("crm_token");
  if (!token) { location.replace("/"); return; }
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const mmss = (s) => { s = Math.round(s || 0); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; };
  const since = (iso) => iso ? mmss((Date.now() - Date.parse(iso)) / 1000) : "";
  async function api(path) {
    const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (res.status === 401) { localStorage.removeItem("crm_token"); location.replace("/"); throw new Error("signed out"); }
    if (res.status === 403) {
      document.body.innerHTML = "<main class='card' style='margin:24px'><p class='error'>Supervisors only.</p>"
        + "<p><a href='/operator'>Back to your workspace</a> · <a href='/' id='other-user'>Sign in as someone else</a></p></main>";
      document.getElementById("other-user").onclick = () => { localStorage.removeItem("crm_token"); localStorage.removeItem("crm_user"); };
      throw new Error("forbidden");
    }
    const body = await res.json();
    if (!res.ok) throw new Error(typeof body.detail === "string" ? body.detail : `request failed (${res.status})`);
    return body;
  }
  function render(b) {
    $("updated").textContent = `updated ${new Date(b.at).toLocaleTimeString()}`;
    $("n-calls").textContent = `(${b.calls.length})`;
    $("calls").innerHTML = b.calls.map((c) => `<tr><td>${c.direction === "outbound" ? "→ " + esc(c.client_number || c.did_or_dialled) : esc(c.caller_number)}</td><td>${esc(c.client_name || "")}</td>
      <td class="state-${esc(c.state)}">${esc(c.state)}</td><td>${esc(c.talking || (c.ringing || []).join(", ") || c.agent_extension || "")}</td>
      <td>${since(c.started_at)}</td></tr>`).join("");
    $("agents").innerHTML = b.agents.map((a) => `<tr data-ext="${esc(a.extension)}"><td>${esc(a.extension)}</td><td>${esc(a.name)}</td>
      <td class="state-${a.state === "off duty" ? "off" : esc(a.state)}">${esc(a.state)}</td></tr>`).join("");
    $("n-queue").textContent = `(${b.queue.length})`;
    $("queue").innerHTML = b.queue.map((c) => `<li>${esc(c.caller_number)}${c.client_name ? " " + esc(c.client_name) : ""}
      ${c.queue ? `in queue ${esc(c.queue)} #${c.position}, ` : c.state === "ringing" ? `ringing ${esc((c.ringing || []).join(", "))}, ` : ""}waiting ${since(c.started_at)}</li>`).join("");
    $("missed").innerHTML = b.missed_today.map((m) => `<li>${esc(m.phone)} at ${new Date(m.at).toLocaleTimeString()} (rang ${esc([...new Set(m.agents_rung || [])].join(", ") || "nobody")})</li>`).join("");
    // the list is redrawn every second: the player lives above it, so listening goes on
    $("recent").innerHTML = (b.recent_calls || []).map((c) => `<tr data-id="${c.id}"><td>${new Date(c.at).toLocaleTimeString()}</td>
      <td>${esc(c.phone)}</td><td>${c.direction === "in" ? "in" : "out"}, ${esc(c.status)}${c.talk_seconds ? ", " + mmss(c.talk_seconds) : ""}</td>
      <td>${esc(c.agent_extension || "")}</td><td>${!c.recording ? "" : c.recording.empty ? "<span class='rec-note'>no audio</span>"
        : `<button type="button" class="secondary" data-play="${c.id}" data-testid="play-${c.id}">▶ play</button>`}</td></tr>`).join("");
    $("today").innerHTML = b.today.map((f) => `<tr><td>${esc(f.name)}</td><td>${f.calls_in}</td><td>${f.calls_out}</td>
      <td>${f.answered}</td><td>${f.missed}</td><td>${mmss(f.talk_seconds)}</td></tr>`).join("");
  }
  let last = null;
  async function refresh() { try { render(last = await api("/api/dashboard")); } catch (e) { /* next tick */ } }
  async function loadReport() {
    const q = new URLSearchParams();
    if ($("rep-from").value) q.set("date_from", $("rep-from").value);
    if ($("rep-to").value) q.set("date_to", $("rep-to").value);
    let r;
    try { r = await api(`/api/reports?${q}`); } catch (e) {
      $("report-error").textContent = e.message;
      $("report-error").hidden = false;
      // no figures rather than the last report's, which would read as this range's
      $("report").innerHTML = ""; $("report-period").textContent = ""; $("sources").textContent = "";
      return;
    }
    $("report-error").hidden = true;
    const day = (iso) => new Date(iso).toLocaleDateString(undefined, { timeZone: "UTC" });
    // [from, to) in the company's time zone; shown as the days it covers
    const last = new Date(Date.parse(r.to.slice(0, 10)) - 86400000).toISOString();
    $("report-period").textContent = `Period: ${day(r.from.slice(0, 10))} – ${day(last)} (company time, ${r.from.slice(19) || "UTC"})`;
    const rows = [...r.per_manager, ...(r.team ? [{ name: "Team", ...r.team }] : [])];
    const money = (v) => Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    $("report").innerHTML = rows.map((m) => `<tr><td>${esc(m.name)}</td><td>${m.calls_in}</td><td>${m.calls_out}</td>
      <td>${m.emails_out + m.emails_in}</td><td>${m.created} (${esc(money(m.created_sum))})</td><td>${m.won} (${esc(money(m.won_sum))})</td>
      <td>${m.lost} (${esc(money(m.lost_sum))})</td></tr>`).join("");
    const sources = (r.lead_sources || []).map((s) => `${s.lead_source}: ${s.deals}`).join(" · ");
    $("sources").textContent = sources ? `Deals by lead source: ${sources}` : "";
  }
  // the supervisors' channel says when something changed; a slow poll covers a lost socket
  let timer = null;
  function soon() { if (!timer) timer = setTimeout(() => { timer = null; refresh(); }, 150); }
  function connect(delay) {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws`);
    ws.onopen = () => ws.send(JSON.stringify({ token })); // not in the URL: URLs end up in logs
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "ping") { ws.send(JSON.stringify({ type: "pong" })); return; }
      if (msg.seq) soon();
    };
    ws.onclose = (ev) => {
      if (ev.code === 4401) { localStorage.removeItem("crm_token"); location.replace("/"); return; }
      setTimeout(() => connect(Math.min((delay || 500) * 2, 10000)), delay || 500);
    };
  }
  $("recent").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-play]");
    if (!button) return;
    const id = Number(button.dataset.play);
    $("player").replaceChildren(window.CrmRecordings.element(id, { empty: false }, token, true));
  });
  $("rep-load").onclick = () => loadReport().catch(() => {});
  $("logout").onclick = () => { // ends the session on the server too: the token stops working everywhere
    fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` }, keepalive: true }).catch(() => {});
    localStorage.removeItem("crm_token"); localStorage.removeItem("crm_user"); location.replace("/");
  };
  refresh(); loadReport().catch(() => {});
  setInterval(refresh, 3000);
  setInterval(() => { if (last) render(last); }, 1000); // the "since" clocks tick between refreshes
  connect(500);
})();
