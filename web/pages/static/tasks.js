// @ts-check
// /tasks: my agenda (overdue, today, upcoming), a week calendar (drag a task to another day to
// reschedule it), a new task, supervisors' pick of whose agenda, missed calls to call back, and
// the reminders that pop when `task.reminder` arrives (a beep and a desktop notification).

import { api, latestOnly } from "./lib/api.js";
import { $, fill, fillList, h, input, setStatus } from "./lib/dom.js";
import { dateTime, dayKey, shortTime, timeZone, when } from "./lib/format.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/tasks.en.js";
import ru from "./lib/i18n/tasks.ru.js";
import { addDays, mondayOf, zonedToInstant, zonedParts } from "./tasks_time.js";

registerCatalogue({ ru, en });

/**
 * @typedef {{ id: number, title: string, kind: string, contact_type: string | null, goal: string | null,
 *   due_at: string | null, remind_at: string | null, assignee_id: number | null, client_id: number | null,
 *   client_name: string | null, done: boolean, overdue: boolean, tries: number }} Task
 * @typedef {{ task_id: number, client_id: number, client_name: string, phone: string | null,
 *   last_missed_at: string, tries: number, due_at: string | null, done: boolean, called_back: boolean }} Missed
 */

const KINDS = ["callback", "meeting", "other"];
const CONTACT_TYPES = ["call", "meeting", "email", "sms", "visit", "other"];
const REMIND_BEFORE = [0, 5, 15, 30, 60, 1440]; // minutes before the due time

const shell = await startShell({ titleKey: "tasks.title", socket: { status: true, lastSeqKey: "crm_tasks_seq" } });
if (shell) await main(shell);

/** @param {import("./lib/shell.js").Shell} shell */
async function main(shell) {
  const me = shell.me;
  const staff = me.role === "supervisor" || me.role === "admin";
  const zone = timeZone() || "UTC";
  let whose = me.id;
  let weekStart = mondayOf(dayKey(new Date()));

  const whoseSelect = /** @type {HTMLSelectElement} */ ($("whose"));
  const assigneeSelect = /** @type {HTMLSelectElement} */ ($("nt-assignee"));
  if (staff) {
    /** @type {{ id: number, login: string, full_name: string }[]} */
    const users = await api("/api/users");
    for (const select of [whoseSelect, assigneeSelect]) {
      fill(select, users.map((u) => h("option", { value: String(u.id), text: u.full_name || u.login, selected: u.id === me.id })));
    }
    $("whose-wrap").hidden = false;
    $("nt-assignee-wrap").hidden = false;
    whoseSelect.addEventListener("change", () => { whose = Number(whoseSelect.value); assigneeSelect.value = whoseSelect.value; void refresh(); });
  }
  fill($("nt-kind"), KINDS.map((k) => h("option", { value: k, text: t(`tasks.kind.${k}`) })));
  fill($("nt-contact"), [h("option", { value: "", text: "—" }), ...CONTACT_TYPES.map((k) => h("option", { value: k, text: t(`tasks.contact.${k}`) }))]);
  fill($("nt-remind"), REMIND_BEFORE.map((m) => h("option", { value: String(m), text: m ? t("tasks.remindMinutes", { n: m }) : t("tasks.remindAtDue") })));

  /** @param {string} path @param {Record<string, string | number>} params */
  const withQuery = (path, params) => `${path}?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))}`;

  /** @param {Task} task @param {boolean} showDay */
  function taskItem(task, showDay) {
    const due = task.due_at ? (showDay ? dateTime(task.due_at) : shortTime(task.due_at)) : t("tasks.noDue");
    const doneButton = h("button", { type: "button", class: "secondary", "data-testid": "done", text: t("tasks.markDone"), disabled: task.done });
    doneButton.addEventListener("click", () => void markDone(task.id));
    return h("li", { "data-task-id": task.id, class: task.done ? "done" : null },
      h("span", { class: "tag", text: t(`tasks.kind.${task.kind}`) }),
      h("span", { class: "what" },
        h("span", { class: "strong", text: task.title }),
        task.client_name ? h("span", { class: "muted", text: ` · ${task.client_name}` }) : null,
        task.goal ? h("span", { class: "muted", text: ` · ${task.goal}` }) : null),
      task.overdue ? h("span", { class: "tag late", text: t("tasks.late") }) : null,
      h("span", { class: "muted", text: due }),
      doneButton);
  }

  /** @param {number} id */
  async function markDone(id) {
    await api(`/api/tasks/${id}/done`, { method: "POST" });
    await refresh();
  }

  /** @param {string} state */
  async function byState(state) {
    /** @type {Task[]} */
    const rows = await api(withQuery("/api/tasks", { assignee: whose, state, tz: zone, limit: 200 }));
    return rows;
  }

  // each list drawn from its latest read only: news and a change of whose agenda come quickly
  const refreshLists = latestOnly(async (current) => {
    const [overdue, today, upcoming] = await Promise.all([byState("overdue"), byState("today"), byState("upcoming")]);
    if (!current()) return;
    const todayOpen = today.filter((x) => !overdue.some((o) => o.id === x.id));
    fillList($("overdue"), overdue.map((x) => taskItem(x, true)), t("tasks.none"));
    fillList($("today"), todayOpen.map((x) => taskItem(x, false)), t("tasks.none"));
    fillList($("upcoming"), upcoming.map((x) => taskItem(x, true)), t("tasks.none"));
    $("n-overdue").textContent = String(overdue.length);
    $("n-today").textContent = String(todayOpen.length);
    $("n-upcoming").textContent = String(upcoming.length);
  });

  const refreshWeek = latestOnly(async (current) => {
    const days = Array.from({ length: 7 }, (_, i) => addDays(weekStart, i));
    /** @type {Task[]} */
    const rows = await api(withQuery("/api/tasks", {
      assignee: whose, limit: 500,
      date_from: zonedToInstant(`${days[0]}T00:00`, zone).toISOString(),
      date_to: zonedToInstant(`${addDays(weekStart, 7)}T00:00`, zone).toISOString(),
    }));
    if (!current()) return;
    const todayKey = dayKey(new Date());
    $("week-label").textContent = `${dateTime(zonedToInstant(`${days[0]}T00:00`, zone)).split(",")[0]} — ${dateTime(zonedToInstant(`${days[6]}T00:00`, zone)).split(",")[0]}`;
    fill($("week"), days.map((key) => {
      const items = rows.filter((x) => x.due_at && dayKey(new Date(x.due_at)) === key).map((x) => {
        const item = h("div", { class: x.done ? "item done" : "item", draggable: !x.done, "data-task-id": x.id, text: `${shortTime(x.due_at)} ${x.title}` });
        item.addEventListener("dragstart", (e) => { e.dataTransfer?.setData("text/plain", String(x.id)); });
        return item;
      });
      const column = h("div", { class: key === todayKey ? "day today" : "day", "data-day": key, "data-testid": `day-${key}` },
        h("h4", { text: dateTime(zonedToInstant(`${key}T12:00`, zone)).split(",")[0] }), items);
      column.addEventListener("dragover", (e) => { e.preventDefault(); column.classList.add("over"); });
      column.addEventListener("dragleave", () => column.classList.remove("over"));
      column.addEventListener("drop", (e) => {
        e.preventDefault();
        column.classList.remove("over");
        const id = Number(e.dataTransfer?.getData("text/plain"));
        const task = rows.find((x) => x.id === id);
        if (task) void moveToDay(task, key);
      });
      return column;
    }));
  });

  /** Keep the time of day, change the day (in the company's zone). @param {Task} task @param {string} key */
  async function moveToDay(task, key) {
    const hm = task.due_at ? zonedParts(new Date(task.due_at), zone).slice(11, 16) : "10:00";
    const due = zonedToInstant(`${key}T${hm}`, zone);
    await api(`/api/tasks/${task.id}/reschedule`, { json: { due_at: due.toISOString() } });
    await refresh();
  }

  const refreshMissed = latestOnly(async (current) => {
    /** @type {Missed[]} */
    const rows = await api(withQuery("/api/missed-calls", staff ? { assignee_id: whose } : {}));
    if (!current()) return;
    fillList($("missed"), rows.map((m) => {
      const call = h("button", { type: "button", "data-testid": "call-back", text: t("tasks.callBack") });
      call.addEventListener("click", async () => {
        call.disabled = true;
        try {
          await api("/api/calls/originate", { json: { client_id: m.client_id } });
          setStatus($("missed-status"), t("tasks.calling", { who: m.client_name }));
        } catch (e) {
          setStatus($("missed-status"), t("tasks.callFailed", { error: e instanceof Error ? e.message : String(e) }), true);
          call.disabled = false;
        }
        $("missed-status").hidden = false;
      });
      return h("li", { "data-task-id": m.task_id, "data-client-id": m.client_id },
        h("span", { class: "what" },
          h("span", { class: "strong", text: m.client_name }),
          h("span", { class: "muted", text: ` ${m.phone || ""}` })),
        h("span", { class: "tag", "data-testid": "tries", text: t("tasks.tries", { n: m.tries }) }),
        h("span", { class: "muted", text: when(m.last_missed_at) }),
        call);
    }), t("tasks.noMissed"));
  });

  async function refresh() {
    await Promise.all([refreshLists(), refreshWeek(), refreshMissed()]);
    // answers handled (drawn or dropped as outdated): diagnostics, and the tests' signal
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  }

  $("week-prev").addEventListener("click", () => { weekStart = addDays(weekStart, -7); void refreshWeek(); });
  $("week-next").addEventListener("click", () => { weekStart = addDays(weekStart, 7); void refreshWeek(); });

  $("new-task").addEventListener("submit", async (e) => {
    e.preventDefault();
    const status = $("nt-status");
    const dueText = input("nt-due").value;
    const due = dueText ? zonedToInstant(dueText, zone) : null;
    const before = Number(/** @type {HTMLSelectElement} */ ($("nt-remind")).value);
    const contact = /** @type {HTMLSelectElement} */ ($("nt-contact")).value;
    try {
      await api("/api/tasks", { json: {
        title: input("nt-title").value,
        kind: /** @type {HTMLSelectElement} */ ($("nt-kind")).value,
        contact_type: contact || null,
        goal: input("nt-goal").value || null,
        due_at: due ? due.toISOString() : null,
        remind_at: due ? new Date(due.getTime() - before * 60000).toISOString() : null,
        assignee_id: staff ? Number(assigneeSelect.value) : null,
      } });
      setStatus(status, t("tasks.created"));
      input("nt-title").value = "";
      input("nt-goal").value = "";
      await refresh();
    } catch (err) {
      setStatus(status, t("tasks.saveFailed", { error: err instanceof Error ? err.message : String(err) }), true);
    }
    status.hidden = false;
  });

  const permButton = $("notify-perm");
  if ("Notification" in window && Notification.permission === "default") {
    permButton.hidden = false;
    permButton.addEventListener("click", async () => { await Notification.requestPermission(); permButton.hidden = Notification.permission !== "default"; });
  }

  /** @type {AudioContext | null} */
  let audio = null;
  function beep() {
    try {
      audio = audio || new AudioContext();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.4);
      return true;
    } catch (e) {
      return false; // no audio device: the banner is enough
    }
  }

  /** @param {any} p the task.reminder payload */
  function showReminder(p) {
    const box = $("reminders");
    if (box.querySelector(`[data-task-id="${p.id}"]`)) return;
    const due = p.due_at ? shortTime(p.due_at) : "";
    const doneButton = h("button", { type: "button", "data-testid": "reminder-done", text: t("tasks.markDone") });
    const dismiss = h("button", { type: "button", class: "secondary", "data-testid": "reminder-dismiss", text: t("tasks.dismiss") });
    const card = h("div", { class: "reminder", role: "alert", "data-testid": "reminder", "data-task-id": p.id },
      h("span", { class: "what" },
        h("span", { class: "strong", text: t("tasks.reminderTitle", { title: p.title }) }),
        p.client_name ? h("span", { class: "muted", text: ` · ${p.client_name}` }) : null,
        due ? h("span", { class: "muted", text: ` · ${t("tasks.dueAt", { time: due })}` }) : null),
      doneButton, dismiss);
    doneButton.addEventListener("click", async () => { await markDone(p.id); card.remove(); });
    dismiss.addEventListener("click", () => card.remove());
    box.prepend(card);
    card.dataset.sound = beep() ? "played" : "none";
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification(t("tasks.reminderTitle", { title: p.title }), { body: [p.client_name, due].filter(Boolean).join(" · "), tag: `task-${p.id}` });
      note.onclick = () => { window.focus(); note.close(); };
      card.dataset.notified = "yes";
    }
  }

  const socket = shell.socket;
  if (socket) {
    socket.on("task.reminder", (msg, info) => { if (!info.replayed) showReminder(msg.payload); });
    for (const type of ["task.created", "task.updated", "task.done"]) socket.on(type, () => void refresh());
    socket.connect();
  }
  await refresh();
  document.body.dataset.ready = "yes";
}
