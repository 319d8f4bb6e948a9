// @ts-check
// REST calls with the signed-in user's bearer token.
//
// The token is kept in localStorage (`crm_token`, the signed-in user's record in `crm_user`):
// an Authorization header, not a cookie, so no page can be driven by another site (no CSRF).
// A 401 means the sign-in ended (signed out elsewhere, expired, new password): back to "/".

import { has, lang, registerCatalogue, t } from "./i18n.js";
import errorsEn from "./i18n/errors.en.js";
import errorsRu from "./i18n/errors.ru.js";

// the server's error codes in words, for every page (see ApiError)
registerCatalogue({ ru: errorsRu, en: errorsEn });

export const TOKEN_KEY = "crm_token";
export const USER_KEY = "crm_user";

/**
 * @typedef {"operator" | "manager" | "supervisor" | "admin"} Role
 * @typedef {{ path: string, label: string }} NavPage
 * @typedef {{
 *   id: number, login: string, role: Role, full_name: string, extension: string | null,
 *   email: string | null, timezone: string, locale: "ru" | "en" | null, is_active: boolean,
 * }} User
 * @typedef {User & { company_timezone: string, default_locale: "ru" | "en", pages: NavPage[] }} Me
 */

/**
 * An answer other than 2xx: `status`; the server's machine `code` (web/errors.py: e.g.
 * "deal.lost_reason_required", null when it sent none); `message` in the user's language (in
 * English the server's own words; otherwise the code's text in lib/i18n/errors.*.js, else the
 * server's words); `detail`: the server's English words as they came.
 */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {unknown} [body]
   * @param {Headers} [headers]
   */
  constructor(status, message, body, headers) {
    const data = /** @type {{ detail?: unknown, code?: unknown, params?: unknown } | null} */ (
      body && typeof body === "object" ? body : null);
    const code = data && typeof data.code === "string" ? data.code : null;
    super(code ? translate(code, data && data.detail, message, data && data.params) : message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = message;
    this.body = body;
    this.headers = headers || new Headers();
  }
}

/** @param {unknown} value @returns {string} */
const plain = (value) => (value == null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value));

/**
 * The server's parameters of a text (`params`, a 422 problem's `ctx`): numbers kept (plurals),
 * anything else as text.
 * @param {unknown} values @returns {Record<string, string | number>}
 */
function paramsOf(values) {
  /** @type {Record<string, string | number>} */
  const out = {};
  for (const [k, v] of Object.entries(values && typeof values === "object" ? values : {})) {
    out[k] = typeof v === "number" ? v : plain(v);
  }
  return out;
}

/**
 * One of FastAPI's 422 problems ({loc, msg, type, ctx}) as "field: problem" in the user's
 * language; a problem type the catalogue lacks keeps pydantic's English `msg`.
 * @param {any} problem
 */
function problemText(problem) {
  if (!problem || typeof problem !== "object") return plain(problem);
  const field = (Array.isArray(problem.loc) ? problem.loc : [])
    .filter((/** @type {unknown} */ p) => !["body", "query", "path", "header"].includes(String(p)))
    .join(" › ");
  const params = paramsOf(problem.ctx);
  const n = params.min_length ?? params.max_length;
  if (n !== undefined) params.n = n;
  const key = `errors.v.${problem.type}`;
  const what = has(key) ? t(key, params) : plain(problem.msg);
  return field ? t("errors.v.line", { field, problem: what }) : what;
}

/**
 * The text of an error code, filled with the server's `params` and its `detail`; the server's
 * own message when the catalogue has no such code.
 * @param {string} code
 * @param {unknown} detail
 * @param {string} fallback
 * @param {unknown} params
 */
function translate(code, detail, fallback, params) {
  // the server's words are English already (and what scripts and tests read): kept as they are
  if (lang() === "en") return fallback;
  if (code === "validation" && Array.isArray(detail)) {
    return t("errors.validation", { detail: detail.map(problemText).join("; ") });
  }
  if (!has(`errors.${code}`)) return fallback;
  return t(`errors.${code}`, { detail: fallback, ...paramsOf(params) });
}

/** @returns {string | null} */
export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

/** The user saved at sign-in (or by the last /api/auth/me), if any. @returns {User | null} */
export function storedUser() {
  try {
    return JSON.parse(localStorage.getItem(USER_KEY) || "null");
  } catch (e) {
    return null;
  }
}

/**
 * @param {string} newToken
 * @param {User} user
 */
export function saveSignIn(newToken, user) {
  localStorage.setItem(TOKEN_KEY, newToken);
  localStorage.setItem(USER_KEY, JSON.stringify(user));
}

/** @param {User} user */
export function saveUser(user) {
  localStorage.setItem(USER_KEY, JSON.stringify(user));
}

/** Forget the sign-in in this browser (the server's session is untouched). */
export function forget() {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(USER_KEY);
}

/** Where each role starts: supervisors watch the board, everyone else works calls. @param {{role?: string} | null} user */
export function homeOf(user) {
  return user && (user.role === "supervisor" || user.role === "admin") ? "/dashboard" : "/operator";
}

/** The sign-in page, this sign-in forgotten. */
export function toSignIn() {
  forget();
  location.replace("/");
}

/**
 * Sign out: the session ends on the server too (the token stops working on every instance and
 * its sockets close), then the sign-in page.
 */
export function signOut() {
  const t = token();
  if (t) {
    fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${t}` }, keepalive: true })
      .catch(() => {});
  }
  toSignIn();
}

/** @param {unknown} detail @param {number} status @param {string} statusText */
function messageOf(detail, status, statusText) {
  if (typeof detail === "string") return detail;
  // FastAPI's 422: a list of {loc, msg}, one readable line per problem
  if (Array.isArray(detail) && detail.length) {
    return detail.map((d) => {
      if (!d || typeof d !== "object" || !("msg" in d)) return JSON.stringify(d);
      const where = (Array.isArray(d.loc) ? d.loc : []).filter((/** @type {unknown} */ p) => p !== "body").join(" › ");
      return where ? `${where}: ${d.msg}` : String(d.msg);
    }).join("\n");
  }
  return `${status} ${statusText}`.trim();
}

/**
 * @typedef {{
 *   method?: string, json?: unknown, body?: BodyInit, headers?: Record<string, string>,
 *   signal?: AbortSignal, keepalive?: boolean, anonymous?: boolean,
 * }} ApiOptions
 * `json`: sent as a JSON body; `anonymous`: no token, and a 401 is just an error.
 */

/**
 * A JSON request; resolves to the parsed answer (null for 204), rejects with ApiError carrying
 * the server's message. A 401 (with a token) signs the page out.
 * @param {string} path
 * @param {ApiOptions} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { ...(options.headers || {}) };
  const t = token();
  if (t && !options.anonymous) headers.Authorization = `Bearer ${t}`;
  /** @type {RequestInit} */
  const init = { method: options.method || (options.json !== undefined ? "POST" : "GET"), headers };
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    init.body = options.body;
  }
  if (options.signal) init.signal = options.signal;
  if (options.keepalive) init.keepalive = true;
  const res = await fetch(path, init);
  if (res.status === 401 && !options.anonymous) {
    toSignIn();
    throw new ApiError(401, "signed out");
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(res.status, messageOf(data && data.detail, res.status, res.statusText), data, res.headers);
  }
  return data;
}

/** `data.items`, `data.events` or the array itself (the list answers' shapes). @param {any} data @returns {any[]} */
export function items(data) {
  return Array.isArray(data) ? data : (data && (data.items || data.events)) || [];
}

/**
 * A read of the server that only its latest call may draw: `read` gets `current()`, true until a
 * later call starts. An older answer that comes back after a newer call started (read before
 * the change that started it, or for another filter) is then dropped, not drawn over it.
 * @param {(current: () => boolean) => Promise<void>} read
 * @returns {() => Promise<void>}
 */
export function latestOnly(read) {
  let calls = 0;
  return () => {
    const mine = ++calls;
    return read(() => mine === calls);
  };
}
