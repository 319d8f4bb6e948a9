// @ts-check
// DOM helpers: elements built from data, text always as text (never innerHTML with data).

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, unknown>} Attrs
 */

/**
 * An element: `h("td", {class: "x", "data-id": 3, onclick: fn}, "text", child)`.
 * `class`, `text`, `data-*`/`aria-*`/`role`/`for` and `style` (a string) are set as attributes;
 * `on<event>` functions become listeners; anything else is set as a property (value, hidden…).
 * null, undefined and false attributes and children are left out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs | null} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = String(v);
    else if (k === "text") node.textContent = String(v);
    else if (k === "style" || k === "for" || k === "role" || k.startsWith("data-") || k.startsWith("aria-")) {
      node.setAttribute(k, String(v));
    } else if (k.startsWith("on") && typeof v === "function") {
      node.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    } else {
      /** @type {any} */ (node)[k] = v;
    }
  }
  append(node, children);
  return node;
}

/**
 * @param {Node} node
 * @param {(Child | Child[])[]} children
 */
function append(node, children) {
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * The element with this id; throws when the page lacks it (a broken page fails loudly).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing`);
  return node;
}

/**
 * An input-like element by id (value, checked, disabled typed).
 * @param {string} id
 * @returns {HTMLInputElement}
 */
export function input(id) {
  return /** @type {HTMLInputElement} */ ($(id));
}

/**
 * Replace a node's children.
 * @param {Element} node
 * @param {...(Child | Child[])} children
 */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/**
 * A list's items, or one "empty" item saying so.
 * @param {Element} list
 * @param {Node[]} items
 * @param {string} empty
 */
export function fillList(list, items, empty) {
  if (items.length) list.replaceChildren(...items);
  else list.replaceChildren(h("li", { class: "empty", text: empty }));
}

/**
 * A status line: text, red when it is an error.
 * @param {Element} node
 * @param {string} text
 * @param {boolean} [isError]
 */
export function setStatus(node, text, isError) {
  node.textContent = text;
  node.classList.toggle("error", !!isError);
}
