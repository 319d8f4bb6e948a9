// @ts-check
// Russian and English: `t("feature.key", {param})` in the user's language.
//
// Language: the user's profile (users.locale, chosen with the shell's switch), else the
// browser's (navigator.languages, the first that is ru or en), else the server's DEFAULT_LOCALE.
//
// Strings live in catalogues, one per page or feature, so pages add theirs without touching
// anyone else's: lib/i18n/<feature>.ru.js and lib/i18n/<feature>.en.js, each
// `export default { "<feature>.key": "text", ... };` written as strict JSON after
// `export default` (tests/web/test_i18n.py parses it and checks both have the same keys, and
// that every t("...") literal in the pages' scripts exists). The page imports both and calls
// `registerCatalogue({ ru, en })`. Parameters: "{name}" in the text. Plurals: the value is
// an object of Intl.PluralRules categories ({"one": "…", "few": "…", "many": "…", "other": "…"}),
// chosen by the `n` parameter.

/** @typedef {"ru" | "en"} Lang */
/** @typedef {Record<string, string | Record<string, string>>} Catalogue */

export const LANGS = /** @type {const} */ (["ru", "en"]);

/** @type {Record<Lang, Catalogue>} */
const strings = { ru: {}, en: {} };
/** @type {Lang} */
let current = "en";

/**
 * @param {{ ru: Catalogue, en: Catalogue }} catalogue
 */
export function registerCatalogue(catalogue) {
  Object.assign(strings.ru, catalogue.ru);
  Object.assign(strings.en, catalogue.en);
}

/**
 * The language to use (pure: the shell and the sign-in page pass what they know).
 * @param {string | null | undefined} profile users.locale
 * @param {readonly string[]} browser navigator.languages
 * @param {string | null | undefined} fallback DEFAULT_LOCALE
 * @returns {Lang}
 */
export function chooseLang(profile, browser, fallback) {
  if (profile === "ru" || profile === "en") return profile;
  for (const tag of browser || []) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base === "ru" || base === "en") return base;
  }
  return fallback === "en" ? "en" : "ru";
}

/** @param {Lang} lang */
export function setLang(lang) {
  current = lang;
  document.documentElement.lang = lang;
}

/** @returns {Lang} */
export function lang() {
  return current;
}

/** The browser's language list. @returns {readonly string[]} */
export function browserLangs() {
  return navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""];
}

/**
 * The text of `key` in the current language ("{name}" filled from `params`; a plural entry
 * picked by `params.n`). A missing key shows as the key itself (and the test catches it).
 * @param {string} key
 * @param {Record<string, string | number>} [params]
 * @returns {string}
 */
export function t(key, params) {
  const entry = strings[current][key] ?? strings.en[key];
  let text;
  if (entry == null) text = key;
  else if (typeof entry === "string") text = entry;
  else {
    const n = Number(params && params.n);
    const category = new Intl.PluralRules(current).select(Number.isFinite(n) ? n : 0);
    text = entry[category] ?? entry.other ?? key;
  }
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/**
 * Translate the static text of a page: every element with `data-i18n="key"` gets its text,
 * `data-i18n-placeholder`, `data-i18n-title`, `data-i18n-aria-label` set those attributes.
 * @param {ParentNode} [root]
 */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) {
    node.textContent = t(/** @type {string} */ (node.getAttribute("data-i18n")));
  }
  for (const attr of ["placeholder", "title", "aria-label"]) {
    for (const node of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      node.setAttribute(attr, t(/** @type {string} */ (node.getAttribute(`data-i18n-${attr}`))));
    }
  }
}
