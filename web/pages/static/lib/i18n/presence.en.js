export default {
  "presence.label": "My state:",
  "presence.state.available": "available",
  "presence.state.paused": "paused",
  "presence.state.dnd": "do not disturb",
  "presence.state.wrapup": "wrap-up",
  "presence.available": "Available",
  "presence.pause": "Pause",
  "presence.reason": "Reason for the pause",
  "presence.dnd": "Do not disturb",
  "presence.since": "Time in this state",
  "presence.setFailed": "Could not change your state: {error}"
};
