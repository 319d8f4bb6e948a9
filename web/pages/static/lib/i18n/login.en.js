export default {
  "login.title": "Sign in",
  "login.login": "Login",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.failed": "Sign-in failed ({status})",
  "login.demo.title": "Demo: sign in as one of",
  "login.demo.password": "password",
  "login.demo.extension": "extension {ext}",
  "login.demo.use": "Use",
  "login.demo.messages": "Emails and SMS sent from the cards"
};
