// @ts-check
// SMS and email from a card, as the person at the card should see them: which of the two work
// here before anyone presses Send (GET /api/messages/channels), and why a message was not
// sent, in their language. The server writes a failure as "<code>: <words>"
// ("email.unreachable: the mail server 127.0.0.1:25 refused the connection…"): the code is
// translated here, an unknown one is shown as the server wrote it.

import { api } from "./api.js";
import { has, registerCatalogue, t } from "./i18n.js";
import en from "./i18n/delivery.en.js";
import ru from "./i18n/delivery.ru.js";

registerCatalogue({ ru, en });

/**
 * A failed message's error, in the user's language.
 * @param {string | null | undefined} error
 * @returns {string}
 */
export function deliveryError(error) {
  if (!error) return t("delivery.failed");
  const code = error.split(":", 1)[0].trim();
  return has(`delivery.${code}`) ? t(`delivery.${code}`) : error;
}

/**
 * @typedef {{ available: boolean, reason?: string | null, settings?: string[] }} Channel
 * @typedef {{ sms: Channel, email: Channel }} Channels
 */

/**
 * Disable the Send button of a channel that is not configured, saying why and what would
 * configure it (the note goes beside the button, so it is read before pressing anything).
 * @param {Record<"sms" | "email", HTMLButtonElement>} buttons
 */
export async function showChannels(buttons) {
  /** @type {Channels} */
  let channels;
  try {
    channels = await api("/api/messages/channels");
  } catch (e) {
    console.warn("channels:", e);
    return; // the Send buttons stay; a failure is still reported after Send
  }
  for (const kind of /** @type {const} */ (["sms", "email"])) {
    const channel = channels[kind];
    const button = buttons[kind];
    button.disabled = !channel.available;
    const note = button.parentElement && button.parentElement.querySelector(`[data-channel-note="${kind}"]`);
    if (note) note.remove();
    if (!channel.available) {
      const text = t(`delivery.off.${kind}`, { settings: (channel.settings || []).join(", ") });
      button.title = text;
      const small = document.createElement("small");
      small.className = "muted";
      small.dataset.channelNote = kind;
      small.dataset.testid = `${kind}-unavailable`;
      small.textContent = ` ${text}`;
      button.after(small);
    }
  }
}
