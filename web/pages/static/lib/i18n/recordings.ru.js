export default {
  "rec.empty": "нет записи: звонок не был принят",
  "rec.missing": "запись не найдена",
  "rec.denied": "запись: нет доступа",
  "rec.failed": "запись недоступна"
};
