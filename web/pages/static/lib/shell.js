// @ts-check
/*
 * The page shell: header with the pages the user's role may open, who is signed in, the
 * language switch, sign-out, and two lights: this page's socket, and whether the service
 * follows the PBX. Every signed-in page starts with it.
 *
 * A page (html: <link rel="stylesheet" href="/static/app.css">, its <main>, and ONE
 * <script type="module" src="/static/<page>.js">; no inline script: the CSP forbids it):
 *
 *   import { startShell } from "./lib/shell.js";
 *   import { registerCatalogue, t } from "./lib/i18n.js";
 *   import ru from "./lib/i18n/mypage.ru.js";
 *   import en from "./lib/i18n/mypage.en.js";
 *   registerCatalogue({ ru, en });
 *   const shell = await startShell({ socket: { status: true } });
 *   if (shell) {          // null: not signed in (sent to "/") or not allowed (a notice shown)
 *     shell.socket?.on("deal.stage_changed", (msg, { replayed }) => ...);
 *     shell.socket?.connect();
 *     ... build the page with h() from ./lib/dom.js, call api() from ./lib/api.js ...
 *   }
 *
 * startShell fetches GET /api/auth/me (role, language, the company's time zone, the pages
 * this role may open), sets the language (profile, else browser, else DEFAULT_LOCALE) and the
 * formats, translates the html's data-i18n attributes, and puts the header first in <body>.
 *
 * Adding a page: a row in web/pages_routes.py PAGES (path, html file, roles, label key); the
 * label key and the page's strings in lib/i18n/<feature>.ru.js and .en.js (same keys in both:
 * tests/web/test_i18n.py checks, and that every t("...") used exists). The header then links
 * it for the roles of its row, and startShell refuses the page to any other role.
 *
 * The library: api.js (api(), ApiError, token, signOut), ws.js (Socket: on(type), onState,
 * onStatus, replay from last seq, backoff), dom.js (h(), $(), fill), format.js (time, date,
 * money, duration in the user's locale and the company's zone), i18n.js (t, registerCatalogue).
 */

import { api, homeOf, saveUser, signOut, storedUser, token, toSignIn } from "./api.js";
import { h } from "./dom.js";
import { configure } from "./format.js";
import { browserLangs, chooseLang, lang, LANGS, registerCatalogue, setLang, t, translatePage } from "./i18n.js";
import { Socket } from "./ws.js";
import en from "./i18n/shell.en.js";
import ru from "./i18n/shell.ru.js";

registerCatalogue({ ru, en });

/**
 * @typedef {import("./api.js").Me} Me
 * @typedef {import("./ws.js").SocketOptions} SocketOptions
 * @typedef {{
 *   path?: string, socket?: SocketOptions | false, deniedKey?: string, titleKey?: string,
 * }} ShellOptions
 * `path`: the page's row in the table (default: location.pathname); `socket`: options of the
 * page's websocket (false: none; it is created, not connected: call connect() once the page
 * has its handlers); `deniedKey`: the refusal's text; `titleKey`: the document's title.
 * @typedef {{ me: Me, socket: Socket | null, header: HTMLElement }} Shell
 */

const LANG_NAMES = { ru: "Русский", en: "English" };

/**
 * @param {Me} me
 * @param {string} path
 * @param {Socket | null} socket
 */
function header(me, path, socket) {
  const nav = h("nav", { class: "shell-nav", "aria-label": t("nav.menu") },
    me.pages.map((p) => h("a", {
      href: p.path, text: t(p.label), "data-testid": `nav-${p.path.replace(/^\//, "").replace(/\//g, "-")}`,
      "aria-current": p.path === path ? "page" : null,
    })));
  const langSelect = h("select", { id: "lang", "data-testid": "lang", "aria-label": t("shell.language") },
    LANGS.map((l) => h("option", { value: l, text: LANG_NAMES[l], selected: l === lang() })));
  const langError = h("span", { id: "lang-error", class: "error", role: "alert", hidden: true });
  langSelect.addEventListener("change", async () => {
    try {
      const updated = await api("/api/auth/me", { method: "PATCH", json: { locale: langSelect.value } });
      saveUser(updated);
      location.reload(); // every string on the page, in the new language
    } catch (e) {
      langError.textContent = t("shell.langSaveFailed", { error: e instanceof Error ? e.message : String(e) });
      langError.hidden = false;
    }
  });
  const conn = h("span", { id: "conn", class: "conn", "data-testid": "conn", title: t("shell.conn.title"), hidden: !socket });
  const pbx = h("span", { id: "pbx", class: "conn", "data-testid": "pbx", title: t("shell.pbx.title"), hidden: true });
  if (socket) {
    socket.onState((info) => {
      conn.dataset.state = info.state;
      conn.textContent = info.state === "connecting" && info.attempt
        ? t("shell.conn.reconnecting", { n: info.attempt })
        : t(`shell.conn.${info.state}`, { s: Math.ceil(info.retryInMs / 1000) });
    });
    socket.onStatus((status) => {
      if (!status) return;
      pbx.hidden = false;
      const known = ["up", "down", "standby", "disabled"].includes(status.ami) ? status.ami : "unknown";
      // standby is fine: another instance follows the PBX and its events reach every instance
      pbx.dataset.state = status.ami === "up" || status.ami === "standby" ? "open" : status.ami === "disabled" ? "off" : "closed";
      pbx.dataset.ami = status.ami;
      pbx.textContent = t(`shell.pbx.${known}`);
    });
  }
  const out = h("button", { id: "logout", type: "button", class: "secondary", "data-testid": "logout", text: t("shell.signOut") });
  out.addEventListener("click", () => { if (socket) socket.stop(); signOut(); });
  return h("header", { class: "shell", id: "shell", "data-testid": "shell" },
    h("a", { class: "shell-brand", href: homeOf(me), text: t("app.name") }),
    nav,
    h("span", { class: "spacer" }),
    conn, pbx,
    h("span", { id: "who", class: "shell-who", "data-testid": "who", text: `${me.full_name || me.login} (${t(`shell.role.${me.role}`)})` }),
    langSelect, langError, out);
}

/**
 * The page's <main> replaced by a refusal (the role may not open this page).
 * @param {Me} me
 * @param {string} key
 */
function refuse(me, key) {
  for (const node of document.querySelectorAll("main")) node.remove();
  const other = h("a", { href: "/", id: "other-user", text: t("shell.otherUser") });
  other.addEventListener("click", () => { localStorage.removeItem("crm_token"); localStorage.removeItem("crm_user"); });
  document.body.append(h("main", { class: "card refused", "data-testid": "refused" },
    h("p", { class: "error", text: t(key) }),
    h("p", {}, h("a", { href: homeOf(me), text: t("shell.back") }), " · ", other)));
}

/**
 * Sign-in check, language, formats, header, the page's socket. Resolves to null when the page
 * must not go on (no sign-in: on the way to "/"; a role not allowed: a refusal is shown).
 * @param {ShellOptions} [options]
 * @returns {Promise<Shell | null>}
 */
export async function startShell(options = {}) {
  if (!token()) { toSignIn(); return null; }
  const path = options.path || location.pathname;
  // the language now from what this browser knows, so nothing flashes in the other one
  const cached = storedUser();
  setLang(chooseLang(cached && cached.locale, browserLangs(), null));
  /** @type {Me} */
  let me;
  try {
    me = await api("/api/auth/me");
  } catch (e) {
    return null; // 401: already on the way to "/"; anything else: nothing to show without it
  }
  saveUser(me);
  setLang(chooseLang(me.locale, browserLangs(), me.default_locale));
  // the browser's own variant of that language (en-US, en-GB…) for dates and numbers
  const variant = browserLangs().find((l) => l.toLowerCase().split("-")[0] === lang());
  configure({ locale: variant || (lang() === "ru" ? "ru-RU" : "en-GB"), timeZone: me.company_timezone });
  translatePage();
  if (options.titleKey) document.title = `${t(options.titleKey)} — ${t("app.name")}`;
  const allowed = me.pages.some((p) => p.path === path);
  const socket = allowed && options.socket !== false ? new Socket(options.socket || { status: true }) : null;
  const bar = header(me, path, socket);
  document.body.prepend(bar);
  if (!allowed) { refuse(me, options.deniedKey || "shell.forbidden"); return null; }
  return { me, socket, header: bar };
}
