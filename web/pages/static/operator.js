// @ts-check
// The operator's workspace: live screen-pops over the websocket, the client card and the deal.
// Its parts live in operator/: state (storage, test hooks), events (what the socket brings),
// pop (the screen-pop and the call's result), quick (the pop's note/task/deal), panel (the
// card, deal, tasks, messages, timeline), drafts (unsaved edits kept with their card), ask (the
// dialog for a close's reason or amount), results (contact results on a card), comments (on a
// communication), merge (link a card to a client), calls (recent calls, from the server),
// missed (missed calls to call back), find (client search), alerts (ring and notifications),
// presence (the agent's own state, one click).
//
// Delivery: the shell's socket, asked to replay from the last seq this browser saw for this
// user (kept in localStorage), so a reconnect or a reload gets exactly what was missed; with
// nothing stored, it replays what the server still keeps (about 15 minutes), so a page opened
// while the phone rings shows the pop, and calls already over pop nothing.
//
// `/operator?client=<id>` opens that client's card (the board's missed calls link here).

import { api } from "./lib/api.js";
import { registerCatalogue } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/operator.en.js";
import ru from "./lib/i18n/operator.ru.js";
import { initAlerts } from "./operator/alerts.js";
import { loadRecent, renderCalls } from "./operator/calls.js";
import { onEvent } from "./operator/events.js";
import { initFind } from "./operator/find.js";
import { initPanel, loadDeal, openClient } from "./operator/panel.js";
import { initMerge } from "./operator/merge.js";
import { loadMissed } from "./operator/missed.js";
import { initPop, renderPop } from "./operator/pop.js";
import { initPresence } from "./operator/presence.js";
import { initQuick } from "./operator/quick.js";
import { initResults } from "./operator/results.js";
import { S, initState, seqKey } from "./operator/state.js";

registerCatalogue({ ru, en });

const shell = await startShell({
  titleKey: "op.title",
  socket: (me) => ({ lastSeqKey: seqKey(me), replayFromStart: true, status: true }),
});
if (shell && shell.socket) {
  initState(shell.me, shell.socket);
  initAlerts();
  initPop();
  initPanel();
  initFind();
  initQuick();
  initResults();
  initMerge();
  initPresence(shell.me.id, shell.socket);
  // a pop restored from before the reload shows at once; the replay from last seq updates it
  renderPop();
  renderCalls();
  loadRecent();
  loadMissed();
  shell.socket.on("*", onEvent);
  shell.socket.connect();
  const asked = Number(new URLSearchParams(location.search).get("client"));
  if (Number.isInteger(asked) && asked > 0) openClient(asked, null).catch(() => {});
  api("/api/stages").then((stages) => {
    S.stages = stages;
    if (S.panel) loadDeal();
  }).catch(() => {});
}
