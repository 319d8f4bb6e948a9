// Sign-in: POST /api/auth/token (OAuth2 password form), keep the token, go to the workspace.
"use strict";
(function () {
  // supervisors watch the board; everyone else works calls
  const home = (user) => (["supervisor", "admin"].includes((user || {}).role) ? "/dashboard" : "/operator");
  const form = document.getElementById("login-form");
  const token = localStorage.getItem("crm_token");
  if (token) {
    // already signed in: to that user's page. Who it is may be unknown (signed in on another
    // page): ask, and forget a token the server no longer takes, or the pages bounce forever.
    let user = null;
    try { user = JSON.parse(localStorage.getItem("crm_user") || "null"); } catch (e) { /* none */ }
    if (user) { location.replace(home(user)); return; }
    form.hidden = true;
    fetch("/api/auth/me", { headers: { Authorization: `Bearer ${token}` } })
      .then((res) => (res.ok ? res.json() : Promise.reject(new Error(String(res.status)))))
      .then((me) => { localStorage.setItem("crm_user", JSON.stringify(me)); location.replace(home(me)); })
      .catch(() => { localStorage.removeItem("crm_token"); localStorage.removeItem("crm_user"); form.hidden = false; });
  }
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const body = new URLSearchParams({
      username: document.getElementById("login").value.trim(),
      password: document.getElementById("password").value,
    });
    try {
      const res = await fetch("/api/auth/token", { method: "POST", body });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.detail || `sign-in failed (${res.status})`);
      localStorage.setItem("crm_token", data.access_token);
      localStorage.setItem("crm_user", JSON.stringify(data.user));
      // the click is a user gesture: the only moment a browser lets us ask for notifications
      if ("Notification" in window && Notification.permission === "default") {
        Notification.requestPermission().catch(() => {});
      }
      location.assign(home(data.user));
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });
})();
