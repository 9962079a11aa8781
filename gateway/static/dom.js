// Builds DOM nodes from data without ever parsing HTML. Every string becomes a text node or an
// attribute value, so text from a contact can never become markup or script. There is no
// innerHTML, outerHTML, insertAdjacentHTML or document.write anywhere in these pages.

const SAFE_HREF = /^(tel:|mailto:|https?:|\/|#)/i;

/**
 * h('p', {class: 'note', text: 'hello'}, child, 'more text')
 * Props: class, text, dataset, on<event> (functions only), anything else as an attribute
 * (true: present, false/null/undefined: absent). href values must be tel:, http(s):, / or #.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) {
      if (typeof value !== 'function') throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if (key === 'href' && !SAFE_HREF.test(String(value))) {
      continue;
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Appends nodes and strings (as text) to `el`, skipping null, undefined and false. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces everything inside `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Sets text only when it changed (keeps screen readers from re-announcing the same words). */
export function setText(el, text) {
  const value = String(text ?? '');
  if (el.textContent !== value) el.textContent = value;
}

/** A random UUID that works on plain-http origins too (crypto.randomUUID needs a secure one). */
export function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** UTF-8 length of a string, as the gateway counts message size. */
export function utf8Bytes(text) {
  return new TextEncoder().encode(text).length;
}

/** "0:42", "3:05", "1:02:09": a wait or an age in seconds. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds || 0));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/** The local time of an RFC 3339 timestamp, hours and minutes. */
export function timeOf(ts, locale) {
  const d = ts ? new Date(ts) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString(locale || undefined, { hour: '2-digit', minute: '2-digit' });
}
