// @ts-check
// The operator's workspace: live screen-pops over the websocket, the client card and the deal.
// Its parts live in operator/: state (storage, test hooks), events (what the socket brings),
// pop (the screen-pop and the call's result), panel (the card, deal, tasks, messages,
// timeline), calls (recent calls), find (client search), alerts (ring and notifications).
//
// Delivery: the shell's socket, asked to replay from the last seq this browser saw for this
// user (kept in localStorage), so a reconnect or a reload gets exactly what was missed; with
// nothing stored, it replays what the server still keeps (about 15 minutes), so a page opened
// while the phone rings shows the pop, and calls already over pop nothing.

import { api } from "./lib/api.js";
import { registerCatalogue } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/operator.en.js";
import ru from "./lib/i18n/operator.ru.js";
import { initAlerts } from "./operator/alerts.js";
import { renderCalls } from "./operator/calls.js";
import { onEvent } from "./operator/events.js";
import { initFind } from "./operator/find.js";
import { initPanel, loadDeal } from "./operator/panel.js";
import { initPop, renderPop } from "./operator/pop.js";
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
  // a pop restored from before the reload shows at once; the replay from last seq updates it
  renderPop();
  renderCalls();
  shell.socket.on("*", onEvent);
  shell.socket.connect();
  api("/api/stages").then((stages) => {
    S.stages = stages;
    if (S.panel) loadDeal();
  }).catch(() => {});
}
