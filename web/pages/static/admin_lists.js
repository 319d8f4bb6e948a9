// @ts-check
// The admins' lists for the deal forms (/admin/lists): lost reasons (the board's Lost dialog
// offers them) and lead sources. Rename, reorder, add, remove; deals keep the words they were
// given, so removing an entry only stops offering it.

import { api } from "./lib/api.js";
import { h, setStatus } from "./lib/dom.js";
import { registerCatalogue, t } from "./lib/i18n.js";
import { startShell } from "./lib/shell.js";
import en from "./lib/i18n/dealadmin.en.js";
import ru from "./lib/i18n/dealadmin.ru.js";

registerCatalogue({ ru, en });

/** @typedef {{ id: number, name: string, position: number }} Item */

/** @param {unknown} e */
const errText = (e) => t("common.error", { error: e instanceof Error ? e.message : String(e) });

/** One list's section: `data-list` names its API path (/api/lists/<path>). */
class ListEditor {
  /** @param {HTMLElement} section */
  constructor(section) {
    this.section = section;
    this.base = `/api/lists/${section.dataset.list}`;
    /** @type {Item[]} */
    this.items = [];
    this.list = /** @type {HTMLElement} */ (section.querySelector("[data-testid=items]"));
    this.status = /** @type {HTMLElement} */ (section.querySelector("[data-testid=status]"));
    const form = /** @type {HTMLFormElement} */ (section.querySelector("form"));
    const name = /** @type {HTMLInputElement} */ (form.querySelector("input"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = name.value.trim();
      this.act(() => api(this.base, { json: { name: value } }), t("dealadmin.added", { name: value }))
        .then(() => { name.value = ""; });
    });
  }

  /**
   * @param {() => Promise<unknown>} change
   * @param {string} done
   */
  async act(change, done) {
    try {
      await change();
      setStatus(this.status, done);
    } catch (e) {
      setStatus(this.status, errText(e), true);
    }
    await this.load();
  }

  async load() {
    try {
      this.items = await api(this.base);
      this.list.replaceChildren(...this.items.map((item, i) => this.row(item, i)));
      if (!this.items.length) this.list.append(h("li", { class: "empty muted", text: t("dealadmin.lists.empty") }));
    } catch (e) {
      setStatus(this.status, errText(e), true);
    }
  }

  /** @param {number} from @param {number} to */
  reorder(from, to) {
    const ids = this.items.map((x) => x.id);
    const [moved] = ids.splice(from, 1);
    ids.splice(to, 0, moved);
    return this.act(() => api(`${this.base}/order`, { method: "PUT", json: { ids } }), t("dealadmin.saved"));
  }

  /** @param {Item} item @param {number} i */
  row(item, i) {
    const name = h("input", { value: item.name, maxLength: 100, "data-testid": "name", "aria-label": t("dealadmin.col.name") });
    const save = h("button", { type: "button", "data-testid": "save", text: t("common.save") });
    save.addEventListener("click", () => {
      const value = name.value.trim();
      if (value === item.name) return;
      this.act(() => api(`${this.base}/${item.id}`, { method: "PATCH", json: { name: value } }), t("dealadmin.saved"));
    });
    name.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); save.click(); } });
    const up = h("button", { type: "button", class: "secondary icon", text: "↑", disabled: i === 0, "aria-label": t("dealadmin.up", { name: item.name }) });
    up.addEventListener("click", () => this.reorder(i, i - 1));
    const down = h("button", { type: "button", class: "secondary icon", text: "↓", disabled: i === this.items.length - 1, "aria-label": t("dealadmin.down", { name: item.name }) });
    down.addEventListener("click", () => this.reorder(i, i + 1));
    const remove = h("button", { type: "button", class: "secondary", "data-testid": "delete", text: t("dealadmin.delete") });
    remove.addEventListener("click", () => {
      if (!confirm(t("dealadmin.confirmDelete", { name: item.name }))) return;
      this.act(() => api(`${this.base}/${item.id}`, { method: "DELETE" }), t("dealadmin.deleted"));
    });
    return h("li", { "data-id": item.id, "data-testid": "item" }, up, down, name, save, remove);
  }
}

/** Each list's section: its heading, then a copy of the page's one list-editor template. */
function fillSections() {
  const template = /** @type {HTMLTemplateElement} */ (document.getElementById("list-editor"));
  for (const section of document.querySelectorAll("section[data-list]")) section.append(template.content.cloneNode(true));
}

async function main() {
  fillSections();
  const shell = await startShell({ titleKey: "dealadmin.lists.title" });
  if (!shell) return;
  // the header's lights, as on every page (nothing here listens to the news)
  if (shell.socket) shell.socket.connect();
  const editors = [...document.querySelectorAll("section[data-list]")].map((s) => new ListEditor(/** @type {HTMLElement} */ (s)));
  await Promise.all(editors.map((e) => e.load()));
}

main();
