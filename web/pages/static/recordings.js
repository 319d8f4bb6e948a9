"use strict";
// A call's recording as the pages show it: a player, "no audio" for a call nobody answered (the
// PBX writes only while the call is bridged), "recording missing" when the file is not there.
// An <audio> element sends no Authorization header, so its src is a signed link the API issues
// for this user and this call (POST /api/calls/{id}/recording/link), valid for a while.
(function () {
  const TEXT = {
    empty: "no audio: the call was not answered",
    missing: "recording missing",
    denied: "recording: not yours to hear",
    failed: "recording unavailable",
  };
  const links = new Map(); // call id -> {url, until}

  async function link(callId, token, fresh) {
    const cached = links.get(callId);
    if (!fresh && cached && cached.until - Date.now() > 60 * 1000) return cached;
    const res = await fetch(`/api/calls/${callId}/recording/link`, {
      method: "POST", headers: { Authorization: `Bearer ${token}` },
    });
    if (!res.ok) { links.delete(callId); throw Object.assign(new Error(res.statusText), { status: res.status }); }
    const body = await res.json();
    const got = { url: body.url, until: Date.parse(body.expires_at) };
    links.set(callId, got);
    return got;
  }

  function note(kind) {
    const span = document.createElement("span");
    span.className = `rec-note rec-${kind}`;
    span.dataset.testid = `recording-${kind}`;
    span.textContent = TEXT[kind];
    return span;
  }
  const failure = (e) => note(e.status === 404 ? "missing" : e.status === 403 ? "denied" : "failed");

  // The player for call `callId` whose `recording` is {empty}; `autoplay` starts it at once.
  function element(callId, recording, token, autoplay) {
    const box = document.createElement("div");
    box.className = "recording";
    box.dataset.testid = "recording";
    box.dataset.call = String(callId);
    if (recording.empty) { box.append(note("empty")); return box; }
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "metadata"; // the duration shows without fetching the whole file
    audio.dataset.testid = "recording-player";
    box.append(audio);
    // the link expired or the file went away since: a fresh link says which (tried once)
    let retried = false;
    audio.addEventListener("error", () => {
      if (retried) { box.replaceChildren(note("failed")); return; }
      retried = true;
      link(callId, token, true).then((l) => { audio.src = l.url; }, (e) => box.replaceChildren(failure(e)));
    });
    link(callId, token).then((l) => {
      audio.src = l.url;
      if (autoplay) audio.play().catch(() => { /* the user presses play */ });
    }, (e) => box.replaceChildren(failure(e)));
    return box;
  }

  window.CrmRecordings = { element };
})();
