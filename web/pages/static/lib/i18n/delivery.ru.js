export default {
  "delivery.failed": "не отправлено",
  "delivery.email.unreachable": "почтовый сервер недоступен (SMTP_HOST)",
  "delivery.email.auth": "почтовый сервер не принял вход сервиса (SMTP_USERNAME, SMTP_PASSWORD)",
  "delivery.email.deferred": "почтовый сервер просил повторить позже",
  "delivery.email.rejected": "почтовый сервер отклонил это письмо",
  "delivery.sms.unreachable": "Twilio недоступен",
  "delivery.sms.deferred": "Twilio перегружен или недоступен",
  "delivery.sms.rejected": "Twilio отклонил это SMS (номер, текст или учётная запись)",
  "delivery.off.sms": "SMS здесь не настроены ({settings})",
  "delivery.off.email": "Почта здесь не настроена ({settings})"
};
