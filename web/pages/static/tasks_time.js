// @ts-check
// Calendar days and wall-clock times in a given IANA zone (the company's), without a library:
// the agenda's week and its datetime inputs are in that zone whatever the browser's is.

/**
 * "YYYY-MM-DDTHH:MM:SS" of `d` as a wall clock in `zone`.
 * @param {Date} d
 * @param {string} zone
 */
export function zonedParts(d, zone) {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(d);
  /** @param {string} type */
  const get = (type) => (parts.find((p) => p.type === type) || { value: "00" }).value;
  return `${get("year")}-${get("month")}-${get("day")}T${get("hour")}:${get("minute")}:${get("second")}`;
}

/** @param {string} local "YYYY-MM-DDTHH:MM[:SS]" */
function asUtc(local) {
  const [d, tm] = local.split("T");
  const [y, mo, da] = d.split("-").map(Number);
  const [hh, mi, ss] = (tm || "00:00").split(":").map(Number);
  return Date.UTC(y, mo - 1, da, hh || 0, mi || 0, ss || 0);
}

/**
 * The instant a wall-clock time in `zone` names (twice refined across an offset change).
 * @param {string} local "YYYY-MM-DDTHH:MM"
 * @param {string} zone
 */
export function zonedToInstant(local, zone) {
  const wanted = asUtc(local);
  let guess = wanted;
  for (let i = 0; i < 2; i++) {
    const offset = asUtc(zonedParts(new Date(guess), zone)) - guess;
    guess = wanted - offset;
  }
  return new Date(guess);
}

/**
 * A calendar day `n` days after `key` ("YYYY-MM-DD").
 * @param {string} key
 * @param {number} n
 */
export function addDays(key, n) {
  return new Date(asUtc(`${key}T00:00`) + n * 86400000).toISOString().slice(0, 10);
}

/** The Monday of the week `key` falls in. @param {string} key */
export function mondayOf(key) {
  const weekday = new Date(asUtc(`${key}T00:00`)).getUTCDay(); // 0 = Sunday
  return addDays(key, -((weekday + 6) % 7));
}
