// @ts-check
// Sign-in: POST /api/auth/token (OAuth2 password form), keep the token, go to the user's page.
// In the demo (GET /api/demo/info answers; 404 elsewhere) a banner lists the log-ins.

import { ApiError, api, forget, homeOf, saveSignIn, saveUser, storedUser, token } from "./lib/api.js";
import { $, fill, h, input } from "./lib/dom.js";
import { browserLangs, chooseLang, named, registerCatalogue, setLang, t, translatePage } from "./lib/i18n.js";
import shellEn from "./lib/i18n/shell.en.js";
import shellRu from "./lib/i18n/shell.ru.js";
import { signInError } from "./lib/signin.js";

registerCatalogue({ ru: shellRu, en: shellEn });

const form = /** @type {HTMLFormElement} */ ($("login-form"));
const error = $("login-error");

/** The profile's language if this browser knows it, else the browser's, else DEFAULT_LOCALE. */
async function pickLanguage() {
  const known = storedUser();
  let fallback = null;
  if (!(known && known.locale)) {
    try { fallback = (await api("/api/auth/locale", { anonymous: true })).default_locale; } catch (e) { /* ru */ }
  }
  setLang(chooseLang(known && known.locale, browserLangs(), fallback));
  translatePage();
  document.title = `${t("login.title")} — ${t("app.name")}`;
}

/**
 * @typedef {{ login: string, password: string, role: string, extension?: string | null, name?: string }} DemoLogin
 */

async function demoBanner() {
  /** @type {{ logins?: DemoLogin[], messages_url?: string } | null} */
  let info = null;
  try {
    info = await api("/api/demo/info", { anonymous: true });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) console.warn("demo info:", e);
    return; // 404: not a demo
  }
  if (!info || !info.logins || !info.logins.length) return;
  const banner = $("demo");
  const rows = info.logins.map((x) => {
    const use = h("button", { type: "button", class: "secondary", "data-testid": `demo-use-${x.login}`, text: t("login.demo.use") });
    use.addEventListener("click", () => {
      input("login").value = x.login;
      input("password").value = x.password;
      input("password").focus();
    });
    return h("li", { "data-login": x.login },
      h("code", { text: x.login }), ` ${t("login.demo.password")} `, h("code", { text: x.password }),
      ` — ${named("shell.role", x.role)}`, x.extension ? `, ${t("login.demo.extension", { ext: x.extension })}` : "", " ", use);
  });
  fill(banner,
    h("h2", { text: t("login.demo.title") }),
    h("ul", { class: "mini" }, rows),
    info.messages_url ? h("p", {}, h("a", { href: info.messages_url, target: "_blank", text: t("login.demo.messages") })) : null,
  );
  banner.hidden = false;
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const body = new URLSearchParams({ username: input("login").value.trim(), password: input("password").value });
  try {
    const data = await api("/api/auth/token", { method: "POST", body, anonymous: true });
    saveSignIn(data.access_token, data.user);
    // the click is a user gesture: the only moment a browser lets us ask for notifications
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().catch(() => {});
    }
    location.assign(homeOf(data.user));
  } catch (e) {
    error.textContent = signInError(e);
    error.hidden = false;
  }
});

async function main() {
  await pickLanguage();
  if (token()) {
    // already signed in: to that user's page. Who it is may be unknown (signed in on another
    // page): ask, and forget a token the server no longer takes, or the pages bounce forever.
    const user = storedUser();
    if (user) { location.replace(homeOf(user)); return; }
    try {
      const me = await api("/api/auth/me", { anonymous: true, headers: { Authorization: `Bearer ${token()}` } });
      saveUser(me);
      location.replace(homeOf(me));
      return;
    } catch (e) {
      forget();
    }
  }
  form.hidden = false;
  input("login").focus();
  demoBanner();
}

main();
