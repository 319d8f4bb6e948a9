// @ts-check
// The ring: a beep (Web Audio, unlocked by the first click or key) and a desktop notification.

import { $ } from "../lib/dom.js";
import { diag } from "./state.js";

/** @type {AudioContext | null} */
let audio = null;

function unlockAudio() {
  // browsers start audio only after a user gesture: create/resume the context on the first one
  try {
    const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    audio = audio || new Ctx();
    if (audio && audio.state === "suspended") audio.resume().catch(() => {});
  } catch (e) { audio = null; }
}

export function beep() {
  try {
    unlockAudio();
    if (!audio) return;
    diag.beeps += 1;
    const t0 = audio.currentTime;
    for (const start of [0, 0.35]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.0001, t0 + start);
      gain.gain.exponentialRampToValueAtTime(0.25, t0 + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + start + 0.25);
      osc.connect(gain).connect(audio.destination);
      osc.start(t0 + start);
      osc.stop(t0 + start + 0.3);
    }
  } catch (e) { /* no audio device: the pop still shows */ }
}

/** @param {string} title @param {string} body @param {string} tag */
export function desktopNotify(title, body, tag) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    // renotify: a second call rings again (not in TypeScript's DOM types, hence the cast)
    const options = /** @type {NotificationOptions} */ ({ body, tag, renotify: true, requireInteraction: false });
    const n = new Notification(title, options);
    diag.notifications.push({ title, body });
    n.onclick = () => { window.focus(); n.close(); };
  } catch (e) { /* some platforms only allow notifications from a service worker */ }
}

function setupNotifyButton() {
  const btn = $("notify-enable");
  btn.hidden = !("Notification" in window) || Notification.permission !== "default";
  btn.onclick = async () => {
    unlockAudio();
    try { await Notification.requestPermission(); } catch (e) { /* ignored */ }
    setupNotifyButton();
  };
}

export function initAlerts() {
  for (const type of ["click", "keydown"]) document.addEventListener(type, unlockAudio, { passive: true });
  setupNotifyButton();
}
