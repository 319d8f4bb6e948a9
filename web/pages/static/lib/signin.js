// @ts-check
// What the sign-in forms (the sign-in page, the schedules page's own) share: their words.

import { ApiError } from "./api.js";
import { registerCatalogue, t } from "./i18n.js";
import en from "./i18n/login.en.js";
import ru from "./i18n/login.ru.js";

registerCatalogue({ ru, en });

/**
 * What went wrong, in the user's language for the answers a sign-in expects (wrong password,
 * too many attempts), else the server's message.
 * @param {unknown} e
 */
export function signInError(e) {
  if (!(e instanceof ApiError)) return String(e);
  if (e.status === 401) return t("login.wrong");
  if (e.status === 429) return t("login.tooMany", { s: e.headers.get("Retry-After") || "?" });
  return e.message || t("login.failed", { status: e.status });
}
