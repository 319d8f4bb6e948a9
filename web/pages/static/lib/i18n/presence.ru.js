export default {
  "presence.label": "Мой статус:",
  "presence.state.available": "на месте",
  "presence.state.paused": "перерыв",
  "presence.state.dnd": "не беспокоить",
  "presence.state.wrapup": "поствызывная обработка",
  "presence.available": "На месте",
  "presence.pause": "Перерыв",
  "presence.reason": "Причина перерыва",
  "presence.dnd": "Не беспокоить",
  "presence.since": "Время в этом статусе",
  "presence.setFailed": "Не удалось сменить статус: {error}"
};
