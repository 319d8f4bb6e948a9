export default {
  "login.title": "Вход",
  "login.login": "Логин",
  "login.password": "Пароль",
  "login.submit": "Войти",
  "login.failed": "Не удалось войти ({status})",
  "login.demo.title": "Демо: войдите как",
  "login.demo.password": "пароль",
  "login.demo.extension": "внутр. номер {ext}",
  "login.demo.use": "Подставить",
  "login.demo.messages": "Письма и SMS, отправленные из карточек"
};
