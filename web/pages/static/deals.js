// @ts-check
// The deals board (/deals): a column per stage in pipeline order, a card per deal. Cards move by
// drag and drop, or from their "⋯" menu and the side panel (keyboard); a move to a lost stage
// asks a reason from the admins' list, to a won stage the amount when the deal has none.
// Other people's moves arrive on the socket (deal.stage_changed): the card moves in place, or
// the board reloads when it does not show that deal; created and edited deals reload it.

import { api } from "./lib/api.js";
import { $, h, input, setStatus } from "./lib/dom.js";
import * as fmt from "./lib/format.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/deals.en.js";
import ru from "./lib/i18n/deals.ru.js";

registerCatalogue({ ru, en });

/**
 * @typedef {{ id: number, name: string, position: number, kind: "open" | "won" | "lost" }} Stage
 * @typedef {{
 *   id: number, client_id: number, client_name: string, title: string, amount: string,
 *   currency: string, responsible_id: number | null, responsible_name: string | null,
 *   lead_source: string | null, stage_id: number, stage_since: string, days_in_stage: number,
 *   last_contact_at: string | null, closed_at: string | null, lost_reason: string | null,
 * }} Card
 * @typedef {{ stage: Stage, total: number, amount_total: string, cards: Card[] }} Column
 * @typedef {{ id: number, name: string }} Choice
 * @typedef {{ id: number, full_name: string, login?: string, role?: string, is_active?: boolean }} Person
 */

// a column draws this many cards at first ("show more" draws the rest): thousands of nodes
// in one column would make every redraw slow for nothing anyone scrolls to
const FIRST_CARDS = 150;
const CURRENCIES = ["RUB", "USD", "EUR", "KZT", "BYN", "CNY"];
// the reason select's "another reason…" entry (no list entry can be a control character)
const OTHER = "\u0001other";

const S = {
  /** @type {import("./lib/api.js").Me | null} */ me: null,
  staff: false,
  /** @type {Column[]} */ columns: [],
  /** @type {Choice[]} */ reasons: [],
  /** @type {Choice[]} */ sources: [],
  /** @type {Person[]} */ people: [],
  /** @type {Set<number>} columns drawn whole */ expanded: new Set(),
  /** @type {number | null} the deal in the side panel */ panel: null,
  /** @type {ReturnType<typeof setTimeout> | undefined} */ reloadTimer: undefined,
  loading: 0, // the latest board load's ticket (an older answer is dropped)
  loaded: 0, // the ticket of the last load that answered: below `loading`, one is on its way
  // a redraw during a drag would take the card from under the pointer (the drag is lost)
  dragging: false,
  reloadAfterDrag: false,
  renderAfterDrag: false, // a load arrived during a drag: draw it at the drag's end
};

/** @param {unknown} e */
const errText = (e) => t("common.error", { error: e instanceof Error ? e.message : String(e) });

/** @returns {Stage[]} */
const stages = () => S.columns.map((c) => c.stage);

/** @param {number} id */
const stageOf = (id) => stages().find((s) => s.id === id);

/** @param {number} id @returns {Card | undefined} */
function cardOf(id) {
  for (const col of S.columns) {
    const found = col.cards.find((c) => c.id === id);
    if (found) return found;
  }
  return undefined;
}

/** The stage's name; the seeded names are the admins' to change, so shown as they wrote them. @param {number | null} id */
const stageName = (id) => (id == null ? "" : (stageOf(id) || { name: `#${id}` }).name);

// ---- filters ---------------------------------------------------------------------------------

function boardQuery() {
  const q = new URLSearchParams();
  q.set("responsible", S.staff ? /** @type {HTMLSelectElement} */ ($("f-responsible")).value : "me");
  const source = /** @type {HTMLSelectElement} */ ($("f-source")).value;
  if (source) q.set("lead_source", source);
  if (input("f-from").value) q.set("date_from", input("f-from").value);
  if (input("f-to").value) q.set("date_to", input("f-to").value);
  return q.toString();
}

/**
 * Options of a select: `[value, label]` pairs, keeping the current value when it is no longer
 * offered (a deal's lead source removed from the list since).
 * @param {HTMLSelectElement} select
 * @param {[string, string][]} options
 * @param {string} [value]
 */
function options(select, options, value) {
  const pairs = [...options];
  if (value && !pairs.some(([v]) => v === value)) pairs.push([value, value]);
  select.replaceChildren(...pairs.map(([v, label]) => h("option", { value: v, text: label })));
  if (value !== undefined) select.value = value;
}

function fillFilters() {
  const people = S.people.filter((p) => p.is_active !== false);
  if (S.staff) {
    $("f-responsible-label").hidden = false;
    options(/** @type {HTMLSelectElement} */ ($("f-responsible")), [
      ["all", t("deals.filter.all")],
      ["me", t("deals.filter.mine")],
      ...people.map((p) => /** @type {[string, string]} */ ([String(p.id), p.full_name || p.login || `#${p.id}`])),
    ], "all");
  }
  options(/** @type {HTMLSelectElement} */ ($("f-source")),
    [["", t("deals.filter.anySource")], ...S.sources.map((c) => /** @type {[string, string]} */ ([c.name, c.name]))], "");
}

// ---- the board -------------------------------------------------------------------------------

async function loadBoard() {
  const ticket = ++S.loading;
  $("board").setAttribute("aria-busy", "true");
  try {
    const board = await api(`/api/deals/board?${boardQuery()}`);
    if (ticket !== S.loading) return; // a newer load is on its way
    S.columns = board.columns;
    // a new deal needs a stage to start in: the button waits for the board's stages
    /** @type {HTMLButtonElement} */ ($("new-deal")).disabled = false;
    // not under a drag: replacing the card being dragged ends the drag with no drop (the move
    // the user is making is lost); it is drawn when the drag ends
    if (S.dragging) S.renderAfterDrag = true;
    else render();
    setStatus($("deals-status"), "");
  } catch (e) {
    setStatus($("deals-status"), errText(e), true);
  } finally {
    if (ticket === S.loading) {
      S.loaded = ticket;
      $("board").setAttribute("aria-busy", "false");
    }
  }
}

/** Reload soon: several news in a burst make one request. */
function reloadSoon() {
  clearTimeout(S.reloadTimer);
  S.reloadTimer = setTimeout(() => {
    if (S.dragging) S.reloadAfterDrag = true;
    else loadBoard();
  }, 400);
}

/** @param {any} p a deal message's payload @returns {boolean} this page did it (and redrew) */
const mine = (p) => !!S.me && p.user_id === S.me.id;

function render() {
  $("board").replaceChildren(...S.columns.map(columnEl));
}

/** @param {Column} col */
function columnEl(col) {
  const { stage } = col;
  const shown = S.expanded.has(stage.id) ? col.cards : col.cards.slice(0, FIRST_CARDS);
  const list = h("ul", { "aria-label": stage.name }, shown.map(cardEl));
  if (!col.cards.length) list.append(h("li", { class: "empty", text: t("deals.column.empty") }));
  const more = col.cards.length > shown.length
    ? h("button", {
        type: "button", class: "secondary more", "data-testid": "more",
        text: t("deals.column.more", { n: col.cards.length - shown.length }),
        onclick: () => { S.expanded.add(stage.id); replaceColumn(stage.id); },
      })
    : null;
  const kindNote = stage.kind === "won" ? t("deals.column.wonZone") : stage.kind === "lost" ? t("deals.column.lostZone") : "";
  const node = h("section", {
    class: `deals-col kind-${stage.kind}`, "data-stage-id": stage.id, "data-kind": stage.kind,
    "data-testid": `column-${stage.id}`, "aria-label": stage.name,
  },
  h("header", {},
    h("span", { class: "name", text: stage.name }),
    h("span", { class: "sum", "data-testid": "column-count", text: t("deals.column.count", { n: col.total, sum: fmt.money(col.amount_total, null, { decimals: 0 }) }) }),
    kindNote ? h("span", { class: "sum", text: ` · ${kindNote}` }) : null),
  list, more);
  node.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer) ev.dataTransfer.dropEffect = "move";
    node.classList.add("over");
  });
  node.addEventListener("dragleave", (ev) => {
    if (!node.contains(/** @type {Node | null} */ (ev.relatedTarget))) node.classList.remove("over");
  });
  node.addEventListener("drop", (ev) => {
    ev.preventDefault();
    node.classList.remove("over");
    const id = Number(ev.dataTransfer ? ev.dataTransfer.getData("text/plain") : "");
    // after the drag has ended: a modal dialog opened inside the drop would leave the
    // browser's drag session half-finished, and the next drag would not start
    if (id) setTimeout(() => requestMove(id, stage.id), 0);
  });
  return node;
}

/** @param {number} stageId */
function replaceColumn(stageId) {
  const col = S.columns.find((c) => c.stage.id === stageId);
  const old = document.querySelector(`.deals-col[data-stage-id="${stageId}"]`);
  if (col && old) old.replaceWith(columnEl(col));
}

/** @param {Card} c */
function cardEl(c) {
  const contact = c.last_contact_at ? t("deals.card.lastContact", { when: fmt.when(c.last_contact_at) }) : t("deals.card.noContact");
  const menuBtn = h("button", {
    type: "button", class: "secondary move-btn", "data-testid": "card-move",
    "aria-label": t("deals.card.moveMenu", { title: c.title }), text: "⋯", "aria-haspopup": "menu",
  });
  const node = h("li", {
    class: "deal-card", "data-deal-id": c.id, "data-testid": "deal-card", draggable: true, tabIndex: 0,
    "aria-label": `${c.title}, ${c.client_name}`,
  },
  menuBtn,
  h("span", { class: "title", text: c.title }),
  h("span", { class: "client", text: c.client_name }),
  Number(c.amount) ? h("span", { class: "amount", text: fmt.money(c.amount, c.currency) }) : null,
  h("span", { class: "meta", text: c.responsible_name || t("deals.card.nobody") }),
  h("span", { class: "meta", "data-testid": "days", text: t("deals.card.days", { n: c.days_in_stage }) }),
  h("span", { class: "meta", text: contact }),
  c.lost_reason ? h("span", { class: "meta", text: c.lost_reason }) : null);
  node.addEventListener("dragstart", (ev) => {
    if (ev.dataTransfer) {
      ev.dataTransfer.setData("text/plain", String(c.id));
      ev.dataTransfer.effectAllowed = "move";
    }
    node.classList.add("dragging");
    S.dragging = true;
  });
  node.addEventListener("dragend", () => {
    node.classList.remove("dragging");
    S.dragging = false;
    if (S.renderAfterDrag) { S.renderAfterDrag = false; render(); }
    if (S.reloadAfterDrag) { S.reloadAfterDrag = false; reloadSoon(); }
  });
  node.addEventListener("click", (ev) => {
    if (ev.target instanceof Element && ev.target.closest(".move-btn")) return;
    openPanel(c.id);
  });
  node.addEventListener("keydown", (ev) => {
    if (ev.target !== node) return;
    if (ev.key === "Enter") openPanel(c.id);
    if (ev.key === "m" || ev.key === "M" || (ev.key === "F10" && ev.shiftKey)) { ev.preventDefault(); moveMenu(c, menuBtn); }
  });
  menuBtn.addEventListener("click", () => moveMenu(c, menuBtn));
  return node;
}

/**
 * The keyboard's way to move: a menu of the other stages under the card's "⋯" button.
 * @param {Card} c
 * @param {HTMLElement} anchor
 */
function moveMenu(c, anchor) {
  closeMenu();
  const menu = h("ul", { class: "move-menu", role: "menu", id: "move-menu", "data-testid": "move-menu" },
    stages().filter((s) => s.id !== c.stage_id).map((s) => h("li", { role: "none" },
      h("button", {
        type: "button", role: "menuitem", "data-stage-id": s.id, text: t("deals.card.moveTo", { stage: s.name }),
        onclick: () => { closeMenu(); requestMove(c.id, s.id); },
      }))));
  const box = anchor.getBoundingClientRect();
  menu.style.left = `${Math.min(box.left + window.scrollX, window.innerWidth - 240)}px`;
  menu.style.top = `${box.bottom + window.scrollY}px`;
  menu.addEventListener("keydown", (ev) => {
    const items = [...menu.querySelectorAll("button")];
    const at = items.indexOf(/** @type {HTMLButtonElement} */ (document.activeElement));
    if (ev.key === "Escape") { closeMenu(); anchor.focus(); }
    if (ev.key === "ArrowDown") { ev.preventDefault(); items[(at + 1) % items.length].focus(); }
    if (ev.key === "ArrowUp") { ev.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
  });
  document.body.append(menu);
  const first = menu.querySelector("button");
  if (first) first.focus();
}

function closeMenu() {
  const open = document.getElementById("move-menu");
  if (open) open.remove();
}

document.addEventListener("click", (ev) => {
  if (ev.target instanceof Element && !ev.target.closest(".move-menu, .move-btn")) closeMenu();
});

// ---- moving ----------------------------------------------------------------------------------

/**
 * What a move needs beyond the stage: a lost reason, or the amount of a won deal that has none.
 * Resolves to the request body, or null when the user cancelled.
 * @param {Card | { id: number, title: string, amount: string }} deal
 * @param {Stage} stage
 * @returns {Promise<Record<string, unknown> | null>}
 */
function askMove(deal, stage) {
  const needsAmount = stage.kind === "won" && !(Number(deal.amount) > 0);
  const needsReason = stage.kind === "lost";
  if (!needsAmount && !needsReason) return Promise.resolve({ stage_id: stage.id });
  const dialog = /** @type {HTMLDialogElement} */ ($("move-dialog"));
  $("move-title").textContent = t(needsReason ? "deals.move.lostTitle" : "deals.move.wonTitle", { stage: stage.name });
  $("move-deal").textContent = deal.title;
  $("move-amount-label").hidden = !needsAmount;
  $("move-reason-label").hidden = !needsReason;
  input("move-amount").value = "";
  input("move-amount").required = needsAmount;
  const reason = /** @type {HTMLSelectElement} */ ($("move-reason"));
  options(reason, [["", t("deals.move.pickReason")], ...S.reasons.map((c) => /** @type {[string, string]} */ ([c.name, c.name])), [OTHER, t("deals.move.other")]], "");
  reason.required = needsReason;
  const other = input("move-other");
  other.value = "";
  const syncOther = () => {
    const isOther = needsReason && reason.value === OTHER;
    $("move-other-label").hidden = !isOther;
    other.required = isOther;
  };
  reason.onchange = syncOther;
  syncOther();
  $("move-error").hidden = true;
  return new Promise((resolve) => {
    const form = /** @type {HTMLFormElement} */ ($("move-form"));
    form.onsubmit = (ev) => {
      ev.preventDefault();
      /** @type {Record<string, unknown>} */
      const body = { stage_id: stage.id };
      if (needsAmount) body.amount = input("move-amount").value;
      if (needsReason) body.lost_reason = reason.value === OTHER ? other.value.trim() : reason.value;
      if (needsReason && !body.lost_reason) {
        $("move-error").textContent = t("deals.move.reasonNeeded");
        $("move-error").hidden = false;
        return;
      }
      dialog.close();
      resolve(body);
    };
    $("move-cancel").onclick = () => { dialog.close(); resolve(null); };
    dialog.oncancel = () => resolve(null);
    dialog.showModal();
    (needsReason ? reason : input("move-amount")).focus();
  });
}

/**
 * @param {number} dealId
 * @param {number} stageId
 */
async function requestMove(dealId, stageId) {
  const stage = stageOf(stageId);
  const deal = cardOf(dealId) || (S.panel === dealId ? panelDeal : null);
  if (!stage || !deal || deal.stage_id === stageId) return;
  const body = await askMove(deal, stage);
  if (!body) return;
  try {
    await api(`/api/deals/${dealId}/stage`, { json: body });
    setStatus($("deals-status"), t("deals.moved", { title: deal.title, stage: stage.name }));
    await loadBoard();
    if (S.panel === dealId) await openPanel(dealId);
  } catch (e) {
    setStatus($("deals-status"), errText(e), true);
  }
}

// ---- live news -------------------------------------------------------------------------------

/** @param {any} p the deal.stage_changed payload */
function onStageChanged(p) {
  if (mine(p)) return; // this page moved it and has redrawn
  const card = cardOf(p.deal_id);
  const from = card && S.columns.find((c) => c.stage.id === card.stage_id);
  const to = S.columns.find((c) => c.stage.id === p.to_stage_id);
  if (S.loaded !== S.loading) {
    // a board load is on its way, perhaps read before this move: its answer would put the card
    // back where it was. A load asked now (the move is committed) replaces it
    loadBoard();
  } else if (card && from && to && to.stage.kind === "open" && !S.dragging) {
    // the card moves in place; the counters follow
    from.cards = from.cards.filter((c) => c.id !== card.id);
    from.total -= 1;
    card.stage_id = to.stage.id;
    card.days_in_stage = 0;
    to.cards.unshift(card);
    to.total += 1;
    replaceColumn(from.stage.id);
    replaceColumn(to.stage.id);
  } else {
    reloadSoon(); // closed now (its zone shows the latest), or a deal this board did not show
  }
  if (S.panel === p.deal_id) openPanel(p.deal_id);
}

// ---- the side panel: edit, move, history -----------------------------------------------------

/** @type {any} */
let panelDeal = null;

/** @param {number} dealId */
async function openPanel(dealId) {
  S.panel = dealId;
  const panel = $("deal-panel");
  panel.hidden = false;
  // fields typed into before the deal arrives would be overwritten: wait for it
  panel.dataset.state = "loading";
  /** @type {HTMLButtonElement} */ ($("deal-save")).disabled = true;
  setStatus($("deal-status"), t("common.loading"));
  try {
    const deal = await api(`/api/deals/${dealId}`);
    if (S.panel !== dealId) return;
    panelDeal = deal;
    const card = cardOf(dealId);
    $("panel-client").textContent = card ? card.client_name : "";
    input("deal-title").value = deal.title;
    input("deal-amount").value = deal.amount;
    options(/** @type {HTMLSelectElement} */ ($("deal-currency")), CURRENCIES.map((c) => /** @type {[string, string]} */ ([c, c])), deal.currency);
    options(/** @type {HTMLSelectElement} */ ($("deal-source")),
      [["", t("deals.field.noSource")], ...S.sources.map((c) => /** @type {[string, string]} */ ([c.name, c.name]))], deal.lead_source || "");
    $("deal-responsible-label").hidden = !S.staff;
    if (S.staff) {
      options(/** @type {HTMLSelectElement} */ ($("deal-responsible")),
        [["", t("deals.card.nobody")], ...S.people.map((p) => /** @type {[string, string]} */ ([String(p.id), p.full_name || p.login || `#${p.id}`]))],
        deal.responsible_id == null ? "" : String(deal.responsible_id));
    }
    options(/** @type {HTMLSelectElement} */ ($("deal-stage")), stages().map((s) => /** @type {[string, string]} */ ([String(s.id), s.name])), String(deal.stage_id));
    $("deal-history").replaceChildren(...[...deal.moves].reverse().map((/** @type {any} */ m) => h("li", { "data-testid": "history-row" },
      h("span", { class: "muted", text: `${fmt.dateTime(m.moved_at)} · ${m.user_name || t("deals.history.system")}: ` }),
      m.from_stage_id == null
        ? t("deals.history.created", { to: m.to_stage || stageName(m.to_stage_id) })
        : t("deals.history.moved", { from: m.from_stage || stageName(m.from_stage_id), to: m.to_stage || stageName(m.to_stage_id) }),
      m.lost_reason ? h("span", { class: "muted", text: ` (${m.lost_reason})` }) : null)));
    setStatus($("deal-status"), "");
    panel.dataset.state = "ready";
    /** @type {HTMLButtonElement} */ ($("deal-save")).disabled = false;
  } catch (e) {
    setStatus($("deal-status"), errText(e), true);
  }
}

function closePanel() {
  S.panel = null;
  panelDeal = null;
  $("deal-panel").hidden = true;
}

async function saveDeal() {
  if (S.panel == null || !panelDeal) return;
  /** @type {Record<string, unknown>} */
  const body = {
    title: input("deal-title").value.trim(),
    amount: input("deal-amount").value || "0",
    currency: /** @type {HTMLSelectElement} */ ($("deal-currency")).value,
    lead_source: /** @type {HTMLSelectElement} */ ($("deal-source")).value || null,
  };
  if (S.staff) {
    const who = /** @type {HTMLSelectElement} */ ($("deal-responsible")).value;
    const now = panelDeal.responsible_id == null ? "" : String(panelDeal.responsible_id);
    if (who !== now) body.responsible_id = who ? Number(who) : null;
  }
  try {
    await api(`/api/deals/${S.panel}`, { method: "PATCH", json: body });
    setStatus($("deal-status"), t("deals.saved"));
    const id = S.panel;
    await loadBoard();
    await openPanel(id);
    setStatus($("deal-status"), t("deals.saved"));
  } catch (e) {
    setStatus($("deal-status"), errText(e), true);
  }
}

// ---- a new deal ------------------------------------------------------------------------------

/** @type {Map<string, number>} client name -> id, from the last search */
const clientIds = new Map();
/** @type {ReturnType<typeof setTimeout> | undefined} */
let searchTimer;

async function searchClients() {
  const q = input("new-client").value.trim();
  if (q.length < 2) return;
  try {
    const found = await api(`/api/clients?${new URLSearchParams({ q, limit: "10" })}`);
    clientIds.clear();
    for (const c of found.items) if (!clientIds.has(c.name)) clientIds.set(c.name, c.id);
    $("client-options").replaceChildren(...[...clientIds.keys()].map((name) => h("option", { value: name })));
    noteClient();
  } catch (e) { /* the list is a help: typing goes on without it */ }
}

function noteClient() {
  const name = input("new-client").value.trim();
  $("new-client-note").textContent = !name ? "" : clientIds.has(name) ? t("deals.new.existing") : t("deals.new.newClient");
}

function openNew() {
  const form = /** @type {HTMLFormElement} */ ($("new-form"));
  form.reset();
  options(/** @type {HTMLSelectElement} */ ($("new-currency")), CURRENCIES.map((c) => /** @type {[string, string]} */ ([c, c])), "RUB");
  options(/** @type {HTMLSelectElement} */ ($("new-source")),
    [["", t("deals.field.noSource")], ...S.sources.map((c) => /** @type {[string, string]} */ ([c.name, c.name]))], "");
  options(/** @type {HTMLSelectElement} */ ($("new-stage")),
    stages().filter((s) => s.kind === "open").map((s) => /** @type {[string, string]} */ ([String(s.id), s.name])));
  $("new-responsible-label").hidden = !S.staff;
  if (S.staff && S.me) {
    options(/** @type {HTMLSelectElement} */ ($("new-responsible")),
      S.people.filter((p) => p.is_active !== false).map((p) => /** @type {[string, string]} */ ([String(p.id), p.full_name || p.login || `#${p.id}`])),
      String(S.me.id));
  }
  $("new-error").hidden = true;
  $("new-client-note").textContent = "";
  /** @type {HTMLDialogElement} */ ($("new-dialog")).showModal();
  input("new-client").focus();
}

async function createDeal() {
  const name = input("new-client").value.trim();
  try {
    let clientId = clientIds.get(name);
    if (clientId == null) {
      const client = await api("/api/clients", { json: { name, phones: [] } });
      clientId = client.id;
    }
    /** @type {Record<string, unknown>} */
    const body = {
      client_id: clientId,
      title: input("new-title").value.trim(),
      amount: input("new-amount").value || "0",
      currency: /** @type {HTMLSelectElement} */ ($("new-currency")).value,
      lead_source: /** @type {HTMLSelectElement} */ ($("new-source")).value || null,
      stage_id: Number(/** @type {HTMLSelectElement} */ ($("new-stage")).value),
    };
    if (S.staff) body.responsible_id = Number(/** @type {HTMLSelectElement} */ ($("new-responsible")).value);
    const deal = await api("/api/deals", { json: body });
    /** @type {HTMLDialogElement} */ ($("new-dialog")).close();
    setStatus($("deals-status"), t("deals.created", { title: deal.title }));
    await loadBoard();
  } catch (e) {
    $("new-error").textContent = errText(e);
    $("new-error").hidden = false;
  }
}

// ---- start -----------------------------------------------------------------------------------

async function main() {
  const shell = await startShell({ titleKey: "deals.title", socket: { status: true } });
  if (!shell) return;
  S.me = shell.me;
  S.staff = shell.me.role === "supervisor" || shell.me.role === "admin";
  const [reasons, sources, people] = await Promise.all([
    api("/api/lists/lost-reasons"),
    api("/api/lists/lead-sources"),
    S.staff ? api("/api/users") : Promise.resolve([]),
  ]);
  S.reasons = reasons;
  S.sources = sources;
  S.people = people;
  fillFilters();
  for (const id of ["f-responsible", "f-source", "f-from", "f-to"]) $(id).addEventListener("change", () => { S.expanded.clear(); loadBoard(); });
  $("new-deal").addEventListener("click", openNew);
  $("new-cancel").addEventListener("click", () => /** @type {HTMLDialogElement} */ ($("new-dialog")).close());
  $("new-form").addEventListener("submit", (ev) => { ev.preventDefault(); createDeal(); });
  $("new-client").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(searchClients, 250); noteClient(); });
  $("deal-form").addEventListener("submit", (ev) => { ev.preventDefault(); saveDeal(); });
  $("panel-close").addEventListener("click", closePanel);
  $("deal-move").addEventListener("click", () => {
    if (S.panel != null) requestMove(S.panel, Number(/** @type {HTMLSelectElement} */ ($("deal-stage")).value));
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !document.querySelector("dialog[open]") && !document.getElementById("move-menu")) closePanel();
  });
  if (shell.socket) {
    shell.socket.on("deal.stage_changed", (msg) => onStageChanged(msg.payload || {}));
    shell.socket.on("deal.created", (msg) => { if (!mine(msg.payload || {})) reloadSoon(); });
    shell.socket.on("deal.updated", (msg) => { if (!mine(msg.payload || {})) reloadSoon(); });
    // back after a lost connection: what was missed is replayed, but a reload is simplest
    shell.socket.on("replay.truncated", () => reloadSoon());
    shell.socket.connect();
  }
  await loadBoard();
}

main();
