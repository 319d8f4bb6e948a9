// @ts-check
// The admins' users page: the list (GET /api/users/roster, with whether calls can reach each
// user), a new user (POST /api/users: a user with an extension gets the company's working
// hours unless unticked), role, extension, language and e-mail changes (PATCH), deactivation
// and reactivation, and a password reset (POST /api/users/{id}/password): a generated
// temporary password is shown once; the user's sign-ins end on the server.

import { api, ApiError } from "./lib/api.js";
import { $, h, input, setStatus } from "./lib/dom.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/users.en.js";
import ru from "./lib/i18n/users.ru.js";

registerCatalogue({ ru, en });

const ROLES = ["operator", "manager", "supervisor", "admin"];
const LOCALES = ["", "ru", "en"]; // "": the browser decides

/**
 * @typedef {{
 *   id: number, login: string, role: string, full_name: string, extension: string | null,
 *   email: string | null, timezone: string, locale: string | null, is_active: boolean,
 *   has_schedule: boolean, routing_note: string | null,
 * }} UserRow
 */

/** @param {unknown} e */
const why = (e) => (e instanceof ApiError ? e.message : String(e));

/**
 * @param {string} value
 * @param {string[]} values
 * @param {(v: string) => string} label
 * @param {Record<string, unknown>} attrs
 */
function select(value, values, label, attrs) {
  return h("select", attrs, values.map((v) => h("option", { value: v, text: label(v), selected: v === value })));
}

/** @param {string} role */
const roleName = (role) => t(`users.role.${role}`);
/** @param {string} locale */
const localeName = (locale) => t(locale ? `users.locale.${locale}` : "users.locale.auto");

/** A temporary password, shown once. @param {string} login @param {string} password */
function showSecret(login, password) {
  const secret = $("secret");
  secret.replaceChildren(t("users.secret", { login }), " ", h("code", { "data-testid": "secret-password", text: password }));
  secret.hidden = false;
}

/** @param {UserRow} u */
function routingCell(u) {
  if (u.routing_note) {
    return h("td", { class: "error", "data-testid": "routing" },
      t("users.neverRouted"), " ", h("a", { href: "/schedules", text: t("users.giveSchedule") }));
  }
  if (!u.extension) return h("td", { class: "muted", "data-testid": "routing", text: t("users.noPhone") });
  return h("td", { "data-testid": "routing", text: u.has_schedule ? t("users.scheduled") : "" });
}

/** @param {UserRow} u @param {number} myId */
function row(u, myId) {
  const role = select(u.role, ROLES, roleName, { "data-testid": "role", "aria-label": t("users.col.role"), disabled: u.id === myId });
  const extension = h("input", { value: u.extension || "", size: 6, inputmode: "numeric", "data-testid": "extension", "aria-label": t("users.col.extension") });
  const email = h("input", { value: u.email || "", type: "email", "data-testid": "email", "aria-label": t("users.col.email") });
  const locale = select(u.locale || "", LOCALES, localeName, { "data-testid": "locale", "aria-label": t("users.col.locale") });
  const status = h("span", { role: "status", "data-testid": "row-status" });
  const save = h("button", { type: "button", "data-testid": "save", text: t("users.save") });
  save.addEventListener("click", async () => {
    /** @type {Record<string, unknown>} */
    const change = {
      extension: extension.value.trim() || null,
      email: email.value.trim() || null,
      locale: locale.value || null,
    };
    if (u.id !== myId) change.role = role.value;
    try {
      await api(`/api/users/${u.id}`, { method: "PATCH", json: change });
      await load(myId, t("users.saved", { login: u.login }));
    } catch (e) {
      setStatus(status, why(e), true);
    }
  });
  const newPassword = h("input", {
    type: "text", size: 12, minlength: 4, maxlength: 200, autocomplete: "new-password",
    placeholder: t("users.passwordGenerated"), "data-testid": "set-password", "aria-label": t("users.password"),
  });
  const reset = h("button", { type: "button", "data-testid": "reset-password", text: t("users.resetPassword") });
  reset.addEventListener("click", async () => {
    if (!confirm(t("users.confirmReset", { login: u.login }))) return;
    const chosen = newPassword.value;
    try {
      const done = await api(`/api/users/${u.id}/password`, { json: chosen ? { password: chosen } : {} });
      newPassword.value = "";
      if (done.temporary_password) showSecret(u.login, done.temporary_password);
      setStatus(status, t("users.passwordReset"));
    } catch (e) {
      setStatus(status, why(e), true);
    }
  });
  const toggle = h("button", {
    type: "button", "data-testid": u.is_active ? "deactivate" : "activate",
    text: u.is_active ? t("users.deactivate") : t("users.activate"), disabled: u.id === myId,
  });
  toggle.addEventListener("click", async () => {
    if (u.is_active && !confirm(t("users.confirmDeactivate", { login: u.login }))) return;
    try {
      await api(`/api/users/${u.id}`, { method: "PATCH", json: { is_active: !u.is_active } });
      await load(myId, t(u.is_active ? "users.deactivated" : "users.activated", { login: u.login }));
    } catch (e) {
      setStatus(status, why(e), true);
    }
  });
  return h("tr", { "data-user-id": u.id, "data-login": u.login, class: u.is_active ? null : "muted" },
    h("td", { text: u.login }),
    h("td", { text: u.full_name }),
    h("td", {}, role),
    h("td", {}, extension),
    h("td", {}, email),
    h("td", {}, locale),
    routingCell(u),
    h("td", { "data-testid": "state", text: u.is_active ? t("users.active") : t("users.inactive") }),
    h("td", { class: "actions" }, save, " ", newPassword, reset, " ", toggle, " ", status));
}

/** @param {number} myId @param {string} [message] */
async function load(myId, message) {
  try {
    /** @type {UserRow[]} */
    const users = await api("/api/users/roster");
    $("users").replaceChildren(...users.map((u) => row(u, myId)));
    setStatus($("list-status"), message || "");
  } catch (e) {
    setStatus($("list-status"), why(e), true);
  }
}

/** 16 characters from the browser's random source, for a new user without a typed password. */
function generated() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

/** @param {number} myId */
function newUserForm(myId) {
  const role = /** @type {HTMLSelectElement} */ ($("new-role"));
  role.replaceChildren(...ROLES.map((r) => h("option", { value: r, text: roleName(r), selected: r === "operator" })));
  const locale = /** @type {HTMLSelectElement} */ ($("new-locale"));
  locale.replaceChildren(...LOCALES.map((l) => h("option", { value: l, text: localeName(l) })));
  const form = /** @type {HTMLFormElement} */ ($("new-user"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const login = input("new-login").value.trim();
    const typed = input("new-password").value;
    const password = typed || generated();
    try {
      await api("/api/users", {
        json: {
          login,
          password,
          role: role.value,
          full_name: input("new-name").value.trim() || login,
          extension: input("new-extension").value.trim() || null,
          email: input("new-email").value.trim() || null,
          locale: locale.value || null,
          schedule: input("new-schedule").checked ? "default" : "none",
        },
      });
      form.reset();
      input("new-schedule").checked = true;
      setStatus($("new-status"), t("users.created", { login }));
      if (!typed) showSecret(login, password);
      await load(myId);
    } catch (e) {
      setStatus($("new-status"), why(e), true);
    }
  });
}

// the socket only for the header's lights (is the service, and the PBX, there); the list
// changes when an admin acts, and is redrawn then
const shell = await startShell({ socket: { status: true }, titleKey: "users.title" });
if (shell) {
  shell.socket?.connect();
  newUserForm(shell.me.id);
  await load(shell.me.id);
}
