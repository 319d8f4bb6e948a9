// The schedules page's script: a file of its own, so the Content-Security-Policy allows
// scripts from this service only (no inline script).
"use strict";
const TOKEN_KEY = "crm_token";
const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const KINDS = { day_off: "Day off", vacation: "Vacation", extra_shift: "Extra shift" };
const $ = (id) => document.getElementById(id);
let me = null, users = [], selected = null, schedule = null, statusTimer = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k in e && k !== "list") e[k] = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + localStorage.getItem(TOKEN_KEY) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) { signOut(); throw new Error("signed out"); }
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(describe(data?.detail, r.status));
  return data;
}

// FastAPI's 422 detail is a list of {loc, msg}: one readable line per problem
function describe(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => {
      const where = (d.loc || []).filter((p) => p !== "body").join(" › ");
      return where ? `${where}: ${d.msg}` : d.msg;
    }).join("\n");
  }
  return `request failed (${status})`;
}

function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem("crm_user");
  clearInterval(statusTimer);
  $("app").hidden = true; $("logout").hidden = true; $("login").hidden = false; $("me").textContent = "";
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const form = new URLSearchParams({ username: $("login-user").value, password: $("login-password").value });
  const r = await fetch("/api/auth/token", { method: "POST", body: form });
  if (!r.ok) { $("login-error").textContent = "Wrong login or password."; return; }
  const data = await r.json();
  localStorage.setItem(TOKEN_KEY, data.access_token);
  localStorage.setItem("crm_user", JSON.stringify(data.user)); // as the sign-in page keeps it
  start();
});
$("logout").addEventListener("click", () => { // ends the session on the server too
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` }, keepalive: true }).catch(() => {});
  signOut();
});

const canEdit = () => me && (me.role === "admin" || me.role === "supervisor");
const userName = (u) => u.full_name || u.login || (u.extension ? `ext ${u.extension}` : `#${u.id ?? u.user_id}`);
// operators and managers see their own schedule; colleagues are names and extensions to them
const mayOpen = (userId) => canEdit() || (me && me.id === userId);

async function start() {
  if (!localStorage.getItem(TOKEN_KEY)) { signOut(); return; }
  try { me = await api("GET", "/api/auth/me"); } catch { return; }
  $("login").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  $("me").textContent = `${userName(me)} (${me.role})`;
  users = (await api("GET", "/api/users")).filter((u) => mayOpen(u.id));
  const sel = $("user-select");
  sel.replaceChildren(el("option", { value: "", textContent: "— choose a person —" }),
    ...users.map((u) => el("option", { value: u.id, textContent: `${userName(u)}${u.role ? " · " + u.role : ""}${u.extension ? " · " + u.extension : ""}` })));
  sel.onchange = () => sel.value && openSchedule(Number(sel.value));
  try { for (const tz of Intl.supportedValuesOf("timeZone")) $("tz-list").append(el("option", { value: tz })); } catch { /* old browser */ }
  await refreshStatus();
  clearInterval(statusTimer);
  statusTimer = setInterval(refreshStatus, 5000);
}

async function refreshStatus() {
  let s;
  try { s = await api("GET", "/api/routing/status"); } catch { return; }
  $("status-at").textContent = new Date(s.at).toLocaleTimeString();
  $("status-rows").replaceChildren(...s.agents.map((a) => el("tr", {
      className: a.user_id === selected ? "selected" : "", "data-testid": "status-row", "data-user-id": a.user_id,
      on: { click: () => mayOpen(a.user_id) && openSchedule(a.user_id) } },
    el("td", { textContent: a.extension }),
    el("td", { textContent: userName(a) }),
    el("td", { className: a.on_duty ? "" : "off", textContent: a.on_duty ? "yes" : "no" }),
    el("td", { className: "state-" + a.state, textContent: a.state }),
    el("td", { textContent: a.turn ?? "" }),
    el("td", { textContent: a.routed_count }))));
  const next = s.agents.find((a) => a.user_id === s.next_user_id);
  $("next").textContent = next ? `Next round-robin call rings ${userName(next)}${(next.full_name || "").includes(next.extension) ? "" : ` (${next.extension})`}.`
    : "Nobody is on duty and free: calls go to the queue.";
}

async function openSchedule(userId) {
  selected = userId;
  $("user-select").value = String(userId);
  schedule = await api("GET", `/api/schedules/${userId}`);
  const u = users.find((x) => x.id === userId);
  $("editor-name").textContent = u ? userName(u) : `#${userId}`;
  $("tz").value = schedule.timezone;
  $("save-result").textContent = "";
  $("editor").hidden = false;
  render();
  refreshStatus();
}

const hhmm = (t) => (t || "").slice(0, 5);

function render() {
  const edit = canEdit();
  $("readonly").hidden = edit; $("save").hidden = !edit; $("add-exception").hidden = !edit; $("tz").disabled = !edit;
  $("grid").replaceChildren(...DAYS.map((name, day) => {
    const row = el("div", { className: "day", "data-testid": "day-" + day }, el("b", { textContent: name }));
    schedule.intervals.forEach((iv, idx) => {
      if (iv.weekday !== day) return;
      row.append(el("span", { className: "interval", "data-testid": "interval" },
        el("input", { type: "time", value: hhmm(iv.start), disabled: !edit, "data-testid": "interval-start", on: { change: (e) => { iv.start = e.target.value; } } }),
        "–",
        el("input", { type: "time", value: hhmm(iv.end), disabled: !edit, "data-testid": "interval-end", on: { change: (e) => { iv.end = e.target.value; } } }),
        edit ? el("button", { type: "button", className: "link", title: "Remove", textContent: "✕", on: { click: () => { schedule.intervals.splice(idx, 1); render(); } } }) : ""));
    });
    if (edit) row.append(el("button", { type: "button", className: "link", "data-testid": "add-interval-" + day, textContent: "+ shift",
      on: { click: () => { schedule.intervals.push({ weekday: day, start: "09:00", end: "18:00" }); render(); } } }));
    return row;
  }));
  $("exceptions").replaceChildren(...schedule.exceptions.map((x, idx) => {
    const set = (k) => (e) => { x[k] = e.target.value || null; if (k === "kind") render(); };
    return el("div", { className: "exc", "data-testid": "exception" },
      el("select", { disabled: !edit, "data-testid": "exception-kind", on: { change: set("kind") } },
        ...Object.entries(KINDS).map(([k, label]) => el("option", { value: k, textContent: label, selected: k === x.kind }))),
      el("input", { type: "date", value: x.start_date || "", disabled: !edit, "data-testid": "exception-start-date", on: { change: set("start_date") } }),
      "to",
      el("input", { type: "date", value: x.end_date || "", disabled: !edit, "data-testid": "exception-end-date", on: { change: set("end_date") } }),
      ...(x.kind === "extra_shift" ? [
        el("input", { type: "time", value: hhmm(x.start), disabled: !edit, "data-testid": "exception-start", on: { change: set("start") } }), "–",
        el("input", { type: "time", value: hhmm(x.end), disabled: !edit, "data-testid": "exception-end", on: { change: set("end") } })] : []),
      edit ? el("button", { type: "button", className: "link", title: "Remove", textContent: "✕", on: { click: () => { schedule.exceptions.splice(idx, 1); render(); } } }) : "");
  }));
}

$("add-exception").addEventListener("click", () => {
  // today in the browser's own calendar (toISOString would give the UTC date)
  const now = new Date();
  const today = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
  schedule.exceptions.push({ kind: "day_off", start_date: today, end_date: today, start: null, end: null });
  render();
});

$("save").addEventListener("click", async () => {
  const out = $("save-result");
  out.className = ""; out.textContent = "Saving…";
  const body = {
    timezone: $("tz").value || null,
    intervals: schedule.intervals.map((i) => ({ weekday: i.weekday, start: hhmm(i.start), end: hhmm(i.end) })),
    exceptions: schedule.exceptions.map((x) => ({
      kind: x.kind, start_date: x.start_date, end_date: x.end_date || x.start_date,
      start: x.kind === "extra_shift" ? hhmm(x.start) || null : null,
      end: x.kind === "extra_shift" ? hhmm(x.end) || null : null })),
  };
  try {
    schedule = await api("PUT", `/api/schedules/${selected}`, body);
    out.className = "ok"; out.textContent = "Saved.";
    render();
    refreshStatus();
  } catch (e) {
    out.className = "error"; out.textContent = "Not saved: " + e.message;
  }
});

start();
