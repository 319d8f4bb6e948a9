export default {
  "delivery.failed": "not sent",
  "delivery.email.unreachable": "the mail server cannot be reached (SMTP_HOST)",
  "delivery.email.auth": "the mail server refused the service's log-in (SMTP_USERNAME, SMTP_PASSWORD)",
  "delivery.email.deferred": "the mail server asked to try later",
  "delivery.email.rejected": "the mail server refused this email",
  "delivery.sms.unreachable": "Twilio cannot be reached",
  "delivery.sms.deferred": "Twilio is busy or down",
  "delivery.sms.rejected": "Twilio refused this SMS (the number, the text or the account)",
  "delivery.off.sms": "SMS is not configured here ({settings})",
  "delivery.off.email": "Email is not configured here ({settings})"
};
