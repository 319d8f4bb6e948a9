// @ts-check
// Schedules and routing: who is on duty and free now, whose turn is next, and each person's
// weekly schedule with its exceptions (supervisors and admins edit; others read their own).
// A browser with no sign-in gets this page's own sign-in form (a link to /schedules works).

import { api, saveSignIn, token } from "./lib/api.js";
import { $, h, input } from "./lib/dom.js";
import * as fmt from "./lib/format.js";
import { browserLangs, chooseLang, named, registerCatalogue, setLang, t, translatePage } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import loginEn from "./lib/i18n/login.en.js";
import loginRu from "./lib/i18n/login.ru.js";
import en from "./lib/i18n/schedules.en.js";
import ru from "./lib/i18n/schedules.ru.js";

registerCatalogue({ ru: loginRu, en: loginEn });
registerCatalogue({ ru, en });

const KINDS = ["day_off", "vacation", "extra_shift"];
const STATUS_POLL_MS = 5000;

/**
 * @typedef {{ weekday: number, start: string, end: string }} Interval
 * @typedef {{ kind: string, start_date: string | null, end_date: string | null, start: string | null, end: string | null }} Exception
 * @typedef {{ timezone: string, intervals: Interval[], exceptions: Exception[] }} Schedule
 */

/** @type {import("./lib/api.js").Me | null} */
let me = null;
/** @type {any[]} */
let users = [];
/** @type {number | null} */
let selected = null;
/** @type {Schedule} */
let schedule = { timezone: "", intervals: [], exceptions: [] };

const canEdit = () => !!me && (me.role === "admin" || me.role === "supervisor");
/** @param {any} u */
const userName = (u) => u.full_name || u.login || (u.extension ? t("sch.ext", { ext: u.extension }) : `#${u.id ?? u.user_id}`);
// operators and managers see their own schedule; colleagues are names and extensions to them
/** @param {number} userId */
const mayOpen = (userId) => canEdit() || (!!me && me.id === userId);
/** @param {string | null | undefined} value */
const hhmm = (value) => (value || "").slice(0, 5);

function showSignIn() {
  setLang(chooseLang(null, browserLangs(), null));
  translatePage();
  $("app").hidden = true;
  $("login").hidden = false;
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  const body = new URLSearchParams({ username: input("login-user").value, password: input("login-password").value });
  try {
    const data = await api("/api/auth/token", { method: "POST", body, anonymous: true });
    saveSignIn(data.access_token, data.user); // as the sign-in page keeps it
  } catch (e) {
    $("login-error").textContent = t("sch.wrongLogin");
    return;
  }
  $("login").hidden = true;
  start();
});

async function start() {
  const shell = await startShell({ socket: { status: true }, titleKey: "sch.title" });
  if (!shell) return;
  me = shell.me;
  // a call starting or ending changes who is free: the status follows soon (and every 5 s)
  /** @type {ReturnType<typeof setTimeout> | null} */
  let soon = null;
  shell.socket?.on("*", (msg) => {
    if (!soon && msg.type.startsWith("call.")) soon = setTimeout(() => { soon = null; refreshStatus(); }, 300);
  });
  shell.socket?.connect();
  $("app").hidden = false;
  users = (await api("/api/users")).filter((/** @type {any} */ u) => mayOpen(u.id));
  const sel = /** @type {HTMLSelectElement} */ ($("user-select"));
  sel.replaceChildren(h("option", { value: "", text: t("sch.choose") }),
    ...users.map((u) => h("option", { value: u.id, text: `${userName(u)}${u.role ? ` · ${t(`shell.role.${u.role}`)}` : ""}${u.extension ? ` · ${u.extension}` : ""}` })));
  sel.onchange = () => { if (sel.value) openSchedule(Number(sel.value)); };
  try {
    for (const tz of Intl.supportedValuesOf("timeZone")) $("tz-list").append(h("option", { value: tz }));
  } catch (e) { /* old browser */ }
  await refreshStatus();
  setInterval(refreshStatus, STATUS_POLL_MS);
}

async function refreshStatus() {
  let s;
  try { s = await api("/api/routing/status"); } catch (e) { return; }
  $("status-at").textContent = fmt.time(s.at);
  $("status-rows").replaceChildren(...s.agents.map((/** @type {any} */ a) => {
    const row = h("tr", { class: a.user_id === selected ? "selected" : "", "data-testid": "status-row", "data-user-id": a.user_id },
      h("td", { text: a.extension }),
      h("td", { text: userName(a) }),
      h("td", { class: a.on_duty ? "" : "off", text: a.on_duty ? t("common.yes") : t("common.no") }),
      h("td", { class: `state-${a.state}`, text: named("sch.state", a.state) }),
      h("td", { text: a.turn ?? "" }),
      h("td", { text: a.routed_count }));
    row.addEventListener("click", () => { if (mayOpen(a.user_id)) openSchedule(a.user_id); });
    return row;
  }));
  const next = s.agents.find((/** @type {any} */ a) => a.user_id === s.next_user_id);
  $("next").textContent = next
    ? t("sch.next", { who: `${userName(next)}${(next.full_name || "").includes(next.extension) ? "" : ` (${next.extension})`}` })
    : t("sch.nobody");
}

/** @param {number} userId */
async function openSchedule(userId) {
  selected = userId;
  /** @type {HTMLSelectElement} */ ($("user-select")).value = String(userId);
  schedule = await api(`/api/schedules/${userId}`);
  const u = users.find((x) => x.id === userId);
  $("editor-name").textContent = u ? userName(u) : `#${userId}`;
  input("tz").value = schedule.timezone;
  $("save-result").textContent = "";
  $("editor").hidden = false;
  render();
  refreshStatus();
}

/**
 * @param {string} testid
 * @param {string | null} value
 * @param {boolean} edit
 * @param {(value: string) => void} onChange
 * @param {string} [type]
 */
function field(testid, value, edit, onChange, type = "time") {
  const node = h("input", { type, value: type === "time" ? hhmm(value) : value || "", disabled: !edit, "data-testid": testid });
  node.addEventListener("change", () => onChange(node.value));
  return node;
}

/** @param {() => void} action */
function removeButton(action) {
  return h("button", { type: "button", class: "link", title: t("sch.remove"), "aria-label": t("sch.remove"), text: "✕", onclick: action });
}

function render() {
  const edit = canEdit();
  $("readonly").hidden = edit;
  $("save").hidden = !edit;
  $("add-exception").hidden = !edit;
  input("tz").disabled = !edit;
  $("grid").replaceChildren(...[0, 1, 2, 3, 4, 5, 6].map((day) => {
    const row = h("div", { class: "day", "data-testid": `day-${day}` }, h("b", { text: t(`sch.day.${day}`) }));
    schedule.intervals.forEach((iv, idx) => {
      if (iv.weekday !== day) return;
      row.append(h("span", { class: "interval", "data-testid": "interval" },
        field("interval-start", iv.start, edit, (v) => { iv.start = v; }),
        "–",
        field("interval-end", iv.end, edit, (v) => { iv.end = v; }),
        edit ? removeButton(() => { schedule.intervals.splice(idx, 1); render(); }) : null));
    });
    if (edit) {
      row.append(h("button", { type: "button", class: "link", "data-testid": `add-interval-${day}`, text: t("sch.addShift"),
        onclick: () => { schedule.intervals.push({ weekday: day, start: "09:00", end: "18:00" }); render(); } }));
    }
    return row;
  }));
  $("exceptions").replaceChildren(...schedule.exceptions.map((x, idx) => {
    const kind = h("select", { disabled: !edit, "data-testid": "exception-kind" },
      KINDS.map((k) => h("option", { value: k, text: t(`sch.kind.${k}`), selected: k === x.kind })));
    kind.addEventListener("change", () => { x.kind = kind.value; render(); });
    return h("div", { class: "exc", "data-testid": "exception" },
      kind,
      field("exception-start-date", x.start_date, edit, (v) => { x.start_date = v || null; }, "date"),
      t("sch.to"),
      field("exception-end-date", x.end_date, edit, (v) => { x.end_date = v || null; }, "date"),
      x.kind === "extra_shift" ? [
        field("exception-start", x.start, edit, (v) => { x.start = v || null; }), "–",
        field("exception-end", x.end, edit, (v) => { x.end = v || null; })] : null,
      edit ? removeButton(() => { schedule.exceptions.splice(idx, 1); render(); }) : null);
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
  out.className = "";
  out.textContent = t("sch.saving");
  const body = {
    timezone: input("tz").value || null,
    intervals: schedule.intervals.map((i) => ({ weekday: i.weekday, start: hhmm(i.start), end: hhmm(i.end) })),
    exceptions: schedule.exceptions.map((x) => ({
      kind: x.kind, start_date: x.start_date, end_date: x.end_date || x.start_date,
      start: x.kind === "extra_shift" ? hhmm(x.start) || null : null,
      end: x.kind === "extra_shift" ? hhmm(x.end) || null : null })),
  };
  try {
    schedule = await api(`/api/schedules/${selected}`, { method: "PUT", json: body });
    out.className = "ok";
    out.textContent = t("sch.saved");
    render();
    refreshStatus();
  } catch (e) {
    out.className = "error";
    out.textContent = t("sch.notSaved", { error: e instanceof Error ? e.message : String(e) });
  }
});

if (token()) start();
else showSignIn();
