// @ts-check
// The admins' pipeline (/admin/stages): rename, reorder (↑ ↓), say which stages close deals as
// won or lost, add and remove stages. The server keeps the rules (a stage holding deals keeps
// its kind and cannot go: 409; one open, one won and one lost stage always remain) and says
// why; the page shows its words.

import { api } from "./lib/api.js";
import { $, h, input, setStatus } from "./lib/dom.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/dealadmin.en.js";
import ru from "./lib/i18n/dealadmin.ru.js";

registerCatalogue({ ru, en });

/** @typedef {{ id: number, name: string, position: number, kind: "open" | "won" | "lost" }} Stage */

const KINDS = /** @type {const} */ (["open", "won", "lost"]);

/** @type {Stage[]} */
let stages = [];

/** @param {unknown} e */
const errText = (e) => t("common.error", { error: e instanceof Error ? e.message : String(e) });

/** @param {string} [value] */
function kindSelect(value) {
  return h("select", { "data-testid": "kind", "aria-label": t("dealadmin.col.kind") },
    KINDS.map((k) => h("option", { value: k, text: t(`dealadmin.kind.${k}`), selected: k === value })));
}

/**
 * Run a change, then redraw from the server's answer; the server's refusal is shown as said.
 * @param {() => Promise<unknown>} change
 * @param {string} done
 */
async function act(change, done) {
  try {
    await change();
    setStatus($("status"), done);
  } catch (e) {
    setStatus($("status"), errText(e), true);
  }
  await load();
}

/** @param {number} from @param {number} to */
function reorder(from, to) {
  const ids = stages.map((s) => s.id);
  const [moved] = ids.splice(from, 1);
  ids.splice(to, 0, moved);
  return act(() => api("/api/stages/order", { method: "PUT", json: { ids } }), t("dealadmin.saved"));
}

/** @param {Stage} s @param {number} i */
function row(s, i) {
  const name = h("input", { value: s.name, maxLength: 64, required: true, "data-testid": "name", "aria-label": t("dealadmin.col.name") });
  const kind = kindSelect(s.kind);
  const save = h("button", { type: "button", "data-testid": "save", text: t("common.save") });
  save.addEventListener("click", () => {
    /** @type {Record<string, string>} */
    const body = {};
    if (name.value.trim() !== s.name) body.name = name.value.trim();
    if (kind.value !== s.kind) body.kind = kind.value;
    if (!Object.keys(body).length) return;
    act(() => api(`/api/stages/${s.id}`, { method: "PATCH", json: body }), t("dealadmin.saved"));
  });
  name.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); save.click(); } });
  const up = h("button", { type: "button", class: "secondary icon", "data-testid": "up", text: "↑", disabled: i === 0, "aria-label": t("dealadmin.up", { name: s.name }) });
  up.addEventListener("click", () => reorder(i, i - 1));
  const down = h("button", { type: "button", class: "secondary icon", "data-testid": "down", text: "↓", disabled: i === stages.length - 1, "aria-label": t("dealadmin.down", { name: s.name }) });
  down.addEventListener("click", () => reorder(i, i + 1));
  const remove = h("button", { type: "button", class: "secondary", "data-testid": "delete", text: t("dealadmin.delete") });
  remove.addEventListener("click", () => {
    if (!confirm(t("dealadmin.confirmDelete", { name: s.name }))) return;
    act(() => api(`/api/stages/${s.id}`, { method: "DELETE" }), t("dealadmin.deleted"));
  });
  return h("tr", { "data-stage-id": s.id, "data-testid": "stage-row" },
    h("td", {}, up, " ", down),
    h("td", {}, name),
    h("td", {}, kind),
    h("td", {}, save, " ", remove));
}

async function load() {
  try {
    stages = await api("/api/stages");
    $("stages").replaceChildren(...stages.map(row));
  } catch (e) {
    setStatus($("status"), errText(e), true);
  }
}

async function main() {
  const shell = await startShell({ titleKey: "dealadmin.stages.title" });
  if (!shell) return;
  // the header's lights, as on every page (nothing here listens to the news)
  if (shell.socket) shell.socket.connect();
  const kind = /** @type {HTMLSelectElement} */ ($("add-kind"));
  kind.replaceChildren(...KINDS.map((k) => h("option", { value: k, text: t(`dealadmin.kind.${k}`) })));
  $("add-stage").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = input("add-name").value.trim();
    act(() => api("/api/stages", { json: { name, kind: kind.value } }), t("dealadmin.added", { name }))
      .then(() => { input("add-name").value = ""; });
  });
  await load();
}

main();
