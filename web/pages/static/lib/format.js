// @ts-check
// Dates, times, money and durations in the user's language and the company's time zone.
// The shell calls `configure` once it knows both (GET /api/auth/me); before that, the browser's.

/** @type {{ locale: string | undefined, timeZone: string | undefined }} */
const conf = { locale: undefined, timeZone: undefined };

/**
 * @param {{ locale?: string, timeZone?: string }} options
 */
export function configure(options) {
  if (options.locale) conf.locale = options.locale;
  if (options.timeZone) conf.timeZone = options.timeZone;
}

/** The company's time zone, once known. */
export function timeZone() {
  return conf.timeZone;
}

/** @param {string | number | Date | null | undefined} value @returns {Date | null} */
function toDate(value) {
  if (value == null || value === "") return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/**
 * @param {Intl.DateTimeFormatOptions} options
 */
function dtf(options) {
  try {
    return new Intl.DateTimeFormat(conf.locale, { timeZone: conf.timeZone, ...options });
  } catch (e) { // an unknown zone: the browser's
    return new Intl.DateTimeFormat(conf.locale, options);
  }
}

/** "14:05:09" @param {string | number | Date | null | undefined} value */
export function time(value) {
  const d = toDate(value);
  return d ? dtf({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(d) : "";
}

/** "14:05" @param {string | number | Date | null | undefined} value */
export function shortTime(value) {
  const d = toDate(value);
  return d ? dtf({ hour: "2-digit", minute: "2-digit" }).format(d) : "";
}

/** "02.12.2026" / "12/2/2026" @param {string | number | Date | null | undefined} value */
export function date(value) {
  const d = toDate(value);
  return d ? dtf({ year: "numeric", month: "2-digit", day: "2-digit" }).format(d) : "";
}

/** A calendar day given as "YYYY-MM-DD" (no zone: it is a day, not an instant). @param {string} iso */
export function day(iso) {
  const d = toDate(`${iso.slice(0, 10)}T00:00:00Z`);
  return d ? new Intl.DateTimeFormat(conf.locale, { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" }).format(d) : "";
}

/** "2 Dec, 14:05" @param {string | number | Date | null | undefined} value */
export function dateTime(value) {
  const d = toDate(value);
  return d ? dtf({ day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" }).format(d) : "";
}

/** The key of the company-time calendar day an instant falls on ("YYYY-MM-DD"). @param {Date} d */
export function dayKey(d) {
  const parts = dtf({ year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(d);
  /** @param {string} type */
  const get = (type) => (parts.find((p) => p.type === type) || { value: "" }).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/** Time today, date and time otherwise (lists of recent things). @param {string | number | Date | null | undefined} value */
export function when(value) {
  const d = toDate(value);
  if (!d) return "";
  return dayKey(d) === dayKey(new Date()) ? time(d) : dateTime(d);
}

/** "4:05" (minutes:seconds; hours as 1:02:03) @param {number | null | undefined} seconds */
export function duration(seconds) {
  if (seconds == null || !Number.isFinite(Number(seconds))) return "";
  const s = Math.max(0, Math.round(Number(seconds)));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** The time from `iso` until now as a duration ("4:05"); "" for none. @param {string | null | undefined} iso */
export function since(iso) {
  return iso ? duration((Date.now() - Date.parse(iso)) / 1000) : "";
}

/**
 * "12 500 ₽" / "RUB 12,500.00"; a value that is not a number is shown as given.
 * @param {string | number | null | undefined} amount
 * @param {string | null} [currency] ISO 4217; none: a plain number with two decimals
 * @param {{ decimals?: number }} [options]
 */
export function money(amount, currency, options = {}) {
  if (amount == null || amount === "") return "";
  const n = Number(amount);
  if (!Number.isFinite(n)) return String(amount);
  const digits = options.decimals ?? 2;
  if (!currency) return number(n, digits);
  try {
    return new Intl.NumberFormat(conf.locale, {
      style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
    }).format(n);
  } catch (e) {
    return `${number(n, digits)} ${currency}`;
  }
}

/** @param {number} n @param {number} [decimals] */
export function number(n, decimals = 0) {
  return new Intl.NumberFormat(conf.locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(n);
}
