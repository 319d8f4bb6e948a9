// @ts-check
// A call's recording as the pages show it: a player, "no audio" for a call nobody answered (the
// PBX writes only while the call is bridged), "recording missing" when the file is not there.
// An <audio> element sends no Authorization header, so its src is a signed link the API issues
// for this user and this call (POST /api/calls/{id}/recording/link), valid for a while.

import { api, ApiError } from "./api.js";
import { h } from "./dom.js";
import { registerCatalogue, t } from "./i18n.js";
import en from "./i18n/recordings.en.js";
import ru from "./i18n/recordings.ru.js";

registerCatalogue({ ru, en });

/** @type {Map<number, { url: string, until: number }>} */
const links = new Map();

/** @param {number} callId @param {boolean} [fresh] */
async function link(callId, fresh) {
  const cached = links.get(callId);
  if (!fresh && cached && cached.until - Date.now() > 60 * 1000) return cached;
  try {
    const body = await api(`/api/calls/${callId}/recording/link`, { method: "POST" });
    const got = { url: String(body.url), until: Date.parse(body.expires_at) };
    links.set(callId, got);
    return got;
  } catch (e) {
    links.delete(callId);
    throw e;
  }
}

/** @param {"empty" | "missing" | "denied" | "failed"} kind */
function note(kind) {
  const text = { empty: t("rec.empty"), missing: t("rec.missing"), denied: t("rec.denied"), failed: t("rec.failed") }[kind];
  return h("span", { class: `rec-note rec-${kind}`, "data-testid": `recording-${kind}`, text });
}

/** @param {unknown} e */
function failure(e) {
  const status = e instanceof ApiError ? e.status : 0;
  return note(status === 404 ? "missing" : status === 403 ? "denied" : "failed");
}

/**
 * The player for call `callId` whose `recording` is {empty}; `autoplay` starts it at once.
 * @param {number} callId
 * @param {{ empty: boolean }} recording
 * @param {boolean} [autoplay]
 */
export function player(callId, recording, autoplay) {
  const box = h("div", { class: "recording", "data-testid": "recording", "data-call": callId });
  if (recording.empty) { box.append(note("empty")); return box; }
  // the duration shows without fetching the whole file
  const audio = h("audio", { controls: true, preload: "metadata", "data-testid": "recording-player" });
  box.append(audio);
  // the link expired or the file went away since: a fresh link says which (tried once)
  let retried = false;
  audio.addEventListener("error", () => {
    if (retried) { box.replaceChildren(note("failed")); return; }
    retried = true;
    link(callId, true).then((l) => { audio.src = l.url; }, (e) => box.replaceChildren(failure(e)));
  });
  link(callId).then((l) => {
    audio.src = l.url;
    if (autoplay) audio.play().catch(() => { /* the user presses play */ });
  }, (e) => box.replaceChildren(failure(e)));
  return box;
}
