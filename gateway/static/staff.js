// What the console and the supervisor dashboard share: the JSON API, the login form, the staff
// socket, small notices, urgency badges and keyed table rows. Text from contacts is only ever set
// as text (dom.js).

import { $, h, fill, setText } from './dom.js';
import { Link } from './socket.js';

export const URGENCIES = ['critical', 'high', 'normal', 'low'];

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the gateway's JSON API with the session cookie; throws ApiError on a refusal. */
export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, credentials: 'same-origin', cache: 'no-store', headers: {} };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The gateway cannot be reached. Check the connection.');
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(res.status, error.code || `http_${res.status}`, error.message || res.statusText);
  }
  return data;
}

/** The logged-in account, or null. */
export async function whoAmI() {
  try {
    return await api('/api/me');
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

/**
 * Shows a login form in `root` and resolves with the account once a login succeeds. A one-time
 * code field appears when the gateway asks for one.
 */
export function login(root, { title }) {
  return new Promise((resolve) => {
    const error = h('p', { class: 'form-error', role: 'alert', id: 'login-error' });
    const user = h('input', { type: 'text', id: 'username', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
    const pass = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', required: true });
    const totp = h('input', { type: 'text', id: 'totp', name: 'totp', autocomplete: 'one-time-code', inputmode: 'numeric' });
    const totpField = h('div', { class: 'field', hidden: true }, h('label', { for: 'totp' }, 'One-time code'), totp);
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
    const form = h(
      'form',
      { class: 'login-card', 'aria-labelledby': 'login-title', novalidate: true },
      h('h1', { id: 'login-title' }, title),
      h('div', { class: 'field' }, h('label', { for: 'username' }, 'Username'), user),
      h('div', { class: 'field' }, h('label', { for: 'password' }, 'Password'), pass),
      totpField,
      error,
      submit,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      setText(error, '');
      if (!user.value.trim() || !pass.value) {
        setText(error, 'Enter your username and password.');
        return;
      }
      submit.disabled = true;
      const body = { username: user.value.trim(), password: pass.value };
      if (!totpField.hidden && totp.value.trim()) body.totp = totp.value.trim();
      try {
        await api('/api/session', { method: 'POST', body });
        pass.value = '';
        const me = await api('/api/me');
        resolve(me);
      } catch (e) {
        if (e.code === 'totp_required' || e.code === 'bad_totp') {
          totpField.hidden = false;
          totp.focus();
        }
        setText(error, e.code === 'bad_credentials' ? 'Wrong username or password.' : e.message);
      } finally {
        submit.disabled = false;
      }
    });
    fill(root, form);
    root.hidden = false;
    user.focus();
  });
}

export async function logout() {
  try {
    await api('/api/session', { method: 'DELETE' });
  } finally {
    location.reload();
  }
}

/** A short message at the bottom of the screen (announced politely). */
export function toast(text, kind = 'info') {
  const box = $('#toasts');
  if (!box) return;
  const item = h('p', { class: `toast ${kind}` }, text);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 9000 : 5000);
}

export function urgencyBadge(level) {
  return h('span', { class: `badge urgency-${level}` }, level);
}

/** The staff socket: the same reconnecting link as the contact's, on /ws/agent. */
export function staffLink(hooks) {
  return new Link('/ws/agent', hooks);
}

/** Shows what the socket is doing in `el` (hidden while all is well). */
export function connectionText(name, detail) {
  if (name === 'offline') return 'You are offline. Reconnecting when the network is back…';
  if (name === 'retrying') return `Connection lost. Reconnecting in ${detail} s…`;
  if (name === 'connecting') return 'Connecting…';
  return '';
}

/**
 * Keeps `tbody`'s rows in step with `items` by key, reusing rows (so focus, open selects and
 * screen-reader position survive a refresh). `create(item)` builds a row; `update(row, item)`
 * refreshes it.
 */
export function reconcile(tbody, items, key, create, update) {
  const existing = new Map(Array.from(tbody.rows, (row) => [row.dataset.key, row]));
  let previous = null;
  for (const item of items) {
    const k = key(item);
    let row = existing.get(k);
    if (row) existing.delete(k);
    else {
      row = create(item);
      row.dataset.key = k;
    }
    update(row, item);
    const want = previous ? previous.nextSibling : tbody.firstChild;
    if (row !== want) tbody.insertBefore(row, want);
    previous = row;
  }
  for (const row of existing.values()) row.remove();
}

/** A short chime (no audio file: a WebAudio tone), for offers and alarms. */
export class Chime {
  constructor() {
    this.enabled = true;
    this.ctx = null;
    const unlock = () => this.unlock();
    document.addEventListener('pointerdown', unlock, { once: true });
    document.addEventListener('keydown', unlock, { once: true });
  }

  unlock() {
    if (!this.ctx && window.AudioContext) {
      try {
        this.ctx = new AudioContext();
      } catch {
        this.ctx = null;
      }
    }
    if (this.ctx && this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  play(urgent = false) {
    if (!this.enabled) return;
    this.unlock();
    const ctx = this.ctx;
    if (!ctx || ctx.state !== 'running') return;
    const notes = urgent ? [880, 660, 880, 660] : [660, 880];
    notes.forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const start = ctx.currentTime + i * 0.18;
      osc.frequency.value = freq;
      osc.type = 'sine';
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.17);
    });
  }
}
