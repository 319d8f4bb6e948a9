// Sign-in: POST /api/auth/token (OAuth2 password form), keep the token, go to the workspace.
"use strict";
(function () {
  // supervisors watch the board; everyone else works calls
  const home = (user) => (["supervisor", "admin"].includes((user || {}).role) ? "/dashboard" : "/operator");
  if (localStorage.getItem("crm_token")) {
    // already signed in: that page checks the token and comes back here if it is stale
    let user = null;
    try { user = JSON.parse(localStorage.getItem("crm_user") || "null"); } catch (e) { /* none */ }
    location.replace(home(user));
    return;
  }
  const form = document.getElementById("login-form");
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
