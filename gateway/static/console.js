// The counsellor console (CONTRACT.md section 5): log in, go available, take offers, hold several
// conversations as tabs, re-grade, transfer and close them. A reload or a dropped connection loses
// nothing: the gateway's `hello` lists every live conversation with its history.
//
// Text from contacts and supervisors is only ever set as text (dom.js); never as HTML.

import { $, $$, h, fill, setText, uuid, utf8Bytes, timeOf, clock } from './dom.js';
import { Thread } from './thread.js';
import { describe as smsDescribe } from './sms.js';
import { openTransfer, openClose } from './dialogs.js';
import {
  api, whoAmI, login, logout, toast, urgencyBadge, staffLink, connectionText, Chime, URGENCIES,
} from './staff.js';

const chime = new Chime();
const state = {
  me: null,
  config: { outcomes: [], tags: [], canned: {}, languages: [], topics: [], max_message_bytes: 4096 },
  status: 'away',
  convs: new Map(), // id -> conversation
  offers: new Map(), // id -> {frame, el, expiresAt}
  selected: null,
  link: null,
};

const REASONS = {
  counsellor_closed: 'Closed',
  contact_ended: 'The contact left the chat',
  inactive: 'Closed after a long silence',
  transferred: 'Handed over',
  abandoned: 'The contact left before an answer',
  lost: 'Back in the queue: your connection was gone too long',
  erased: 'Erased at the request of the contact or a supervisor: nothing of it is kept',
};

// ---- start ----------------------------------------------------------------------------------

async function main() {
  let me = await whoAmI().catch(() => null);
  if (!me) me = await login($('#login'), { title: 'Counsellor console' });
  $('#login').hidden = true;
  state.me = me;
  if (!['counsellor', 'supervisor'].includes(me.role)) {
    refuse(`Your role (${me.role}) does not answer conversations, so the console is not for you.`);
    return;
  }
  setText($('#whoami'), `${me.display_name || me.username} · ${me.role}`);
  $('#tools').hidden = false;
  $('#desk').hidden = false;
  setConnected(false);
  wireHeader();
  try {
    state.config = { ...state.config, ...(await api('/api/console-config')) };
  } catch (e) {
    toast(`Could not load canned responses and outcomes: ${e.message}`, 'error');
  }
  state.link = staffLink({
    onFrame,
    onState: (name, detail) => {
      const banner = $('#conn');
      const text = connectionText(name, detail);
      setText(banner, text);
      banner.hidden = !text || name === 'open';
      if (name !== 'open') setConnected(false);
      if (name === 'retrying') checkSession();
    },
  });
  state.link.connect();
  setInterval(tick, 1000);
}

function refuse(text) {
  const el = $('#refused');
  fill(el, text, ' ', h('button', { type: 'button', class: 'small', onclick: logout }, 'Log out'));
  el.hidden = false;
}

/** After a failed reconnect: was it the session that ended? Then show the login again. */
async function checkSession() {
  const me = await whoAmI().catch(() => undefined);
  if (me === null) location.reload();
}

function wireHeader() {
  $('#go-available').addEventListener('click', () => send({ type: 'status', status: 'available' }));
  $('#go-away').addEventListener('click', () => send({ type: 'status', status: 'away' }));
  $('#logout').addEventListener('click', logout);
  $('#sound').addEventListener('click', (event) => {
    chime.enabled = !chime.enabled;
    event.currentTarget.setAttribute('aria-pressed', String(chime.enabled));
    setText(event.currentTarget, chime.enabled ? 'Sound on' : 'Sound off');
    if (chime.enabled) chime.unlock();
  });
}

function send(frame) {
  if (!state.link.send(frame)) toast('Not connected: try again in a moment.', 'error');
}

// ---- frames ---------------------------------------------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case 'hello':
      onHello(frame);
      break;
    case 'status':
      setStatus(frame.status);
      break;
    case 'queue':
      setText($('#queue-summary'), frame.waiting ? `${frame.waiting} waiting · longest ${clock(frame.longest_wait_s)}` : 'Nobody waiting');
      break;
    case 'offer':
      addOffer(frame);
      break;
    case 'offer_revoked':
      removeOffer(frame.conversation);
      if (frame.reason === 'timeout') toast('An offer expired and went to someone else.');
      break;
    case 'assigned':
      removeOffer(frame.conversation);
      upsert(frame);
      select(frame.conversation, true);
      break;
    case 'message':
      onMessage(frame);
      break;
    case 'ack': {
      const conv = convOfPending(frame.client_msg_id);
      if (conv) conv.thread.ack(frame.client_msg_id, frame.id) && relabelAll(conv);
      break;
    }
    case 'typing':
      showTyping(state.convs.get(frame.conversation));
      break;
    case 'urgency': {
      const conv = state.convs.get(frame.conversation);
      if (conv) {
        conv.urgency = frame.urgency;
        renderConv(conv);
        if (['high', 'critical'].includes(frame.urgency) && frame.category) {
          toast(`${conv.alias}: urgency raised to ${frame.urgency} (${frame.category.replace(/_/g, ' ')})`, 'error');
        }
      }
      break;
    }
    case 'ended':
      onEnded(frame.conversation, frame.reason);
      break;
    case 'error':
      onError(frame);
      break;
    default:
      break;
  }
}

/** The status switch works only while the socket is up (and `hello` told the status). */
function setConnected(up) {
  $('#go-available').disabled = !up;
  $('#go-away').disabled = !up;
}

function onHello(frame) {
  setConnected(true);
  setStatus(frame.status);
  for (const offer of state.offers.values()) offer.el.remove();
  state.offers.clear();
  const live = new Set();
  for (const c of frame.conversations || []) {
    live.add(c.conversation);
    upsert(c);
  }
  for (const conv of state.convs.values()) {
    if (!conv.ended && !live.has(conv.id)) onEnded(conv.id, 'lost');
  }
  // Messages typed while disconnected: sent again (each client_msg_id is stored once).
  for (const conv of state.convs.values()) {
    if (conv.ended) continue;
    for (const { clientId, msg } of conv.thread.unacked()) {
      if (msg.state === 'failed') continue;
      state.link.send({ type: 'message', conversation: conv.id, text: msg.text, client_msg_id: clientId });
    }
  }
  if (!state.selected && state.convs.size) select(state.convs.keys().next().value, false);
  renderLists();
}

function setStatus(status) {
  state.status = status;
  $('#go-available').setAttribute('aria-pressed', String(status === 'available'));
  $('#go-away').setAttribute('aria-pressed', String(status !== 'available'));
  document.body.dataset.status = status;
}

function onMessage(frame) {
  const conv = state.convs.get(frame.conversation);
  if (!conv) return;
  const msg = { id: frame.id, from: frame.whisper ? 'supervisor' : frame.from, text: String(frame.text ?? ''), ts: frame.ts, whisper: !!frame.whisper, state: 'stored' };
  if (!conv.thread.add(msg)) return;
  if (msg.from === 'contact') hideTyping(conv);
  if (state.selected !== conv.id || document.hidden) {
    if (msg.from !== 'counsellor') conv.unread += 1;
  }
  stick(conv);
  renderTab(conv);
}

function onEnded(id, reason) {
  const conv = state.convs.get(id);
  if (!conv) {
    removeOffer(id);
    return;
  }
  conv.ended = reason || 'counsellor_closed';
  // An erased conversation's messages are gone everywhere: the console shows none of them either.
  if (conv.ended === 'erased') {
    conv.thread.list.replaceChildren();
    conv.thread.byId.clear();
  }
  for (const entry of conv.thread.pending.values()) {
    entry.msg.state = 'failed';
    entry.msg.why = 'the conversation is over';
  }
  relabelAll(conv);
  hideTyping(conv);
  renderConv(conv);
  renderLists();
}

function onError(frame) {
  const conv = frame.conversation ? state.convs.get(frame.conversation) : null;
  if (conv && frame.client_msg_id) {
    const entry = conv.thread.pending.get(frame.client_msg_id);
    if (entry) {
      entry.msg.state = 'failed';
      entry.msg.why = frame.message;
      relabelAll(conv);
      return;
    }
  }
  if (frame.conversation) removeOffer(frame.conversation);
  toast(frame.message || frame.code, 'error');
}

// ---- offers ---------------------------------------------------------------------------------

function addOffer(frame) {
  removeOffer(frame.conversation);
  const expiresAt = Date.now() + (frame.expires_in_s || 0) * 1000;
  const countdown = h('span', { class: 'countdown' });
  const bar = h('progress', { max: String(frame.expires_in_s || 30), value: String(frame.expires_in_s || 0), 'aria-hidden': 'true' });
  const title = `offer-${frame.conversation}`;
  const el = h(
    'li',
    { class: `offer urgency-edge-${frame.urgency}`, 'aria-labelledby': title },
    h('h3', { id: title }, frame.alias || 'New conversation'),
    h(
      'p',
      { class: 'chips' },
      urgencyBadge(frame.urgency),
      h('span', { class: 'badge' }, frame.channel),
      h('span', { class: 'badge' }, (frame.lang || '').toUpperCase()),
      frame.relaxed && frame.relaxed.length ? h('span', { class: 'badge warn' }, `relaxed: ${frame.relaxed.join(', ')}`) : null,
    ),
    h('p', { class: 'offer-times' }, `Waited ${clock(frame.waited_s)} · `, countdown),
    bar,
    h(
      'p',
      { class: 'offer-actions' },
      h('button', { type: 'button', class: 'primary', onclick: () => send({ type: 'accept', conversation: frame.conversation }) }, 'Accept'),
      h('button', { type: 'button', onclick: () => send({ type: 'decline', conversation: frame.conversation }) }, 'Decline'),
    ),
  );
  state.offers.set(frame.conversation, { frame, el, expiresAt, bar, countdown, shownAt: Date.now() });
  $('#offer-list').prepend(el);
  updateOffer(state.offers.get(frame.conversation));
  chime.play(frame.urgency === 'critical' || frame.urgency === 'high');
  renderLists();
  toast(`New offer: ${frame.alias} (${frame.urgency}, ${frame.lang})`);
}

function removeOffer(id) {
  const offer = state.offers.get(id);
  if (!offer) return;
  offer.el.remove();
  state.offers.delete(id);
  renderLists();
}

function updateOffer(offer) {
  const left = Math.max(0, Math.round((offer.expiresAt - Date.now()) / 1000));
  setText(offer.countdown, left ? `expires in ${clock(left)}` : 'expiring…');
  offer.bar.value = left;
}

function tick() {
  for (const offer of state.offers.values()) updateOffer(offer);
  const n = state.offers.size;
  const unread = Array.from(state.convs.values()).reduce((sum, c) => sum + c.unread, 0);
  const prefix = n ? `(${n}) Offer · ` : unread ? `(${unread}) ` : '';
  document.title = `${prefix}Console · Helpline`;
}

// ---- conversations --------------------------------------------------------------------------

function upsert(c) {
  let conv = state.convs.get(c.conversation);
  if (!conv) {
    conv = createConv(c);
    state.convs.set(conv.id, conv);
  }
  Object.assign(conv, {
    alias: c.alias || conv.alias,
    channel: c.channel || conv.channel,
    lang: c.lang || conv.lang,
    urgency: c.urgency || conv.urgency,
    skills: c.skills || conv.skills,
    relaxed: c.relaxed || [],
    ended: null,
  });
  for (const m of c.history || []) {
    conv.thread.add({ id: m.id, from: m.whisper ? 'supervisor' : m.from, text: String(m.text ?? ''), ts: m.ts, whisper: !!m.whisper, state: 'stored' });
  }
  renderConv(conv);
  renderLists();
  stick(conv, true);
  return conv;
}

function createConv(c) {
  const id = c.conversation;
  const conv = { id, alias: c.alias, channel: c.channel, lang: c.lang, urgency: c.urgency, skills: c.skills || [], relaxed: [], ended: null, unread: 0, typingTimer: null };
  conv.tab = h('button', { type: 'button', role: 'tab', id: `tab-${id}`, 'aria-controls': `panel-${id}`, 'aria-selected': 'false', tabindex: '-1', class: 'tab', onclick: () => select(id, true) });
  conv.tab.addEventListener('keydown', tabKeys);
  const list = h('ol', { class: 'messages' });
  const log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages', tabindex: '0' }, list);
  conv.thread = new Thread(list, (msg) => renderMessage(conv, msg));
  conv.typing = h('p', { class: 'typing', hidden: true }, 'The contact is typing…');
  conv.text = h('textarea', { id: `text-${id}`, rows: '3', class: 'compose-text' });
  conv.counter = h('p', { class: 'sms-count', id: `sms-${id}`, hidden: true });
  conv.canned = h('select', { id: `canned-${id}`, class: 'canned' });
  conv.urgencySelect = h('select', { id: `urgency-${id}` }, URGENCIES.map((u) => h('option', { value: u }, u)));
  conv.head = h('div', { class: 'panel-head' });
  conv.endedNote = h('div', { class: 'ended-note', hidden: true });
  const form = h(
    'form',
    { class: 'composer' },
    h('div', { class: 'field canned-field' }, h('label', { for: `canned-${id}` }, 'Canned response'), conv.canned),
    h('label', { for: `text-${id}` }, 'Message to the contact'),
    conv.text,
    conv.counter,
    h('p', { class: 'composer-actions' }, h('span', { class: 'hint' }, 'Enter sends · Shift+Enter for a new line'), h('button', { type: 'submit', class: 'primary' }, 'Send')),
  );
  conv.form = form;
  conv.panel = h(
    'section',
    { role: 'tabpanel', id: `panel-${id}`, 'aria-labelledby': `tab-${id}`, class: 'panel', hidden: true },
    conv.head,
    h(
      'div',
      { class: 'panel-tools' },
      h('label', { for: `urgency-${id}` }, 'Urgency'),
      conv.urgencySelect,
      h('button', { type: 'button', class: 'small', onclick: () => openTransfer(conv, state.config, send) }, 'Transfer…'),
      h('button', { type: 'button', class: 'small danger', onclick: () => openClose(conv, state.config, send) }, 'Close…'),
    ),
    log,
    conv.typing,
    conv.endedNote,
    form,
  );
  conv.log = log;
  conv.urgencySelect.addEventListener('change', () => {
    send({ type: 'urgency', conversation: id, level: conv.urgencySelect.value });
  });
  conv.canned.addEventListener('change', () => {
    const text = conv.canned.value;
    conv.canned.value = '';
    if (!text) return;
    insertAtCursor(conv.text, text);
    updateCounter(conv);
    conv.text.focus();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    sendMessage(conv);
  });
  conv.text.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage(conv);
    }
  });
  conv.text.addEventListener('input', () => {
    updateCounter(conv);
    const now = Date.now();
    if (conv.text.value.trim() && now - (conv.lastTyping || 0) > 2000 && !conv.ended) {
      conv.lastTyping = now;
      state.link.send({ type: 'typing', conversation: id });
    }
  });
  log.addEventListener('scroll', () => {
    if (state.selected === id && conv.unread) {
      conv.unread = 0;
      renderTab(conv);
    }
  });
  $('#tabs').append(conv.tab);
  $('#panels').append(conv.panel);
  return conv;
}

function renderMessage(conv, msg) {
  const el = h(
    'li',
    { class: `msg from-${msg.from}${msg.whisper ? ' whisper' : ''}` },
    h('p', { class: 'who' }, h('span', { class: 'who-name' }), ' ', h('time', { class: 'when' })),
    h('p', { class: 'text' }, msg.text),
  );
  if (msg.from === 'counsellor') el.append(h('p', { class: 'state' }));
  relabel(conv, el, msg);
  return el;
}

function relabel(conv, el, msg) {
  const who = {
    contact: conv.alias || 'Contact',
    counsellor: 'Counsellor',
    supervisor: 'Supervisor whisper (only you see this)',
    system: 'System',
  }[msg.from] || msg.from;
  setText(el.querySelector('.who-name'), who);
  const when = el.querySelector('.when');
  if (msg.ts) {
    when.dateTime = msg.ts;
    setText(when, timeOf(msg.ts));
  }
  const stateEl = el.querySelector('.state');
  if (!stateEl) return;
  const s = msg.id && msg.state !== 'failed' ? 'stored' : msg.state;
  stateEl.className = `state ${s}`;
  if (s === 'failed') {
    fill(stateEl, `Not sent${msg.why ? `: ${msg.why}` : ''} `, conv.ended ? null : h('button', { type: 'button', class: 'small', onclick: () => resend(conv, msg) }, 'Retry'));
  } else fill(stateEl, s === 'stored' ? 'Sent ✓' : 'Sending…');
}

function relabelAll(conv) {
  for (const { el, msg } of conv.thread.byId.values()) relabel(conv, el, msg);
  for (const { el, msg } of conv.thread.pending.values()) relabel(conv, el, msg);
  return true;
}

function renderConv(conv) {
  const meta = [
    urgencyBadge(conv.urgency),
    h('span', { class: 'badge' }, conv.channel),
    h('span', { class: 'badge' }, `language ${(conv.lang || '').toUpperCase()}`),
    conv.relaxed && conv.relaxed.length ? h('span', { class: 'badge warn' }, `requirements relaxed: ${conv.relaxed.join(', ')}`) : null,
  ];
  fill(conv.head, h('h2', {}, conv.alias || 'Conversation'), h('p', { class: 'chips' }, meta));
  if (document.activeElement !== conv.urgencySelect) conv.urgencySelect.value = conv.urgency;
  const cannedList = state.config.canned[conv.lang] || [];
  if (conv.canned.options.length !== cannedList.length + 1) {
    fill(conv.canned, h('option', { value: '' }, cannedList.length ? `Insert one (${(conv.lang || '').toUpperCase()})…` : 'None for this language'), cannedList.map((t) => h('option', { value: t }, t)));
  }
  conv.counter.hidden = conv.channel !== 'sms';
  updateCounter(conv);
  const ended = !!conv.ended;
  conv.form.hidden = ended;
  conv.urgencySelect.disabled = ended;
  for (const b of $$('.panel-tools button', conv.panel)) b.disabled = ended;
  conv.endedNote.hidden = !ended;
  if (ended) {
    fill(conv.endedNote, h('p', {}, h('strong', {}, REASONS[conv.ended] || `Ended (${conv.ended})`)), h('button', { type: 'button', class: 'small', onclick: () => dismiss(conv) }, 'Dismiss this tab'));
  }
  renderTab(conv);
}

function renderTab(conv) {
  const typing = !conv.typing.hidden;
  fill(
    conv.tab,
    h('span', { class: 'tab-title' }, conv.alias || 'Conversation'),
    h('span', { class: 'tab-meta' }, urgencyBadge(conv.urgency), ` ${conv.channel} · ${(conv.lang || '').toUpperCase()}`),
    conv.ended ? h('span', { class: 'tab-ended' }, 'ended') : null,
    typing ? h('span', { class: 'tab-typing' }, 'typing…') : null,
    conv.unread ? h('span', { class: 'unread', 'aria-label': `${conv.unread} unread` }, String(conv.unread)) : null,
  );
}

function renderLists() {
  $('#no-offers').hidden = state.offers.size > 0;
  const live = Array.from(state.convs.values()).filter((c) => !c.ended).length;
  $('#no-convs').hidden = state.convs.size > 0;
  setText($('#load'), state.me && state.me.capacity ? `${live} of ${state.me.capacity}` : String(live));
  $('#empty-panel').hidden = state.convs.size > 0;
  document.body.classList.toggle('has-offers', state.offers.size > 0);
}

function select(id, focus) {
  const conv = state.convs.get(id);
  if (!conv) return;
  state.selected = id;
  for (const c of state.convs.values()) {
    const on = c.id === id;
    c.tab.setAttribute('aria-selected', String(on));
    c.tab.tabIndex = on ? 0 : -1;
    c.panel.hidden = !on;
  }
  conv.unread = 0;
  renderTab(conv);
  stick(conv, true);
  if (focus) conv.text.focus();
}

/** Arrow keys move between tabs (the WAI-ARIA tabs pattern). */
function tabKeys(event) {
  const tabs = $$('[role="tab"]', $('#tabs'));
  const i = tabs.indexOf(event.currentTarget);
  let next = null;
  if (event.key === 'ArrowDown' || event.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
  if (event.key === 'ArrowUp' || event.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
  if (event.key === 'Home') next = tabs[0];
  if (event.key === 'End') next = tabs[tabs.length - 1];
  if (next) {
    event.preventDefault();
    select(next.id.slice(4), false);
    next.focus();
  }
}

function dismiss(conv) {
  conv.tab.remove();
  conv.panel.remove();
  state.convs.delete(conv.id);
  if (state.selected === conv.id) {
    state.selected = null;
    const first = state.convs.keys().next();
    if (!first.done) select(first.value, false);
  }
  renderLists();
}

function stick(conv, force) {
  const log = conv.log;
  if (force || log.scrollHeight - log.scrollTop - log.clientHeight < 120) log.scrollTop = log.scrollHeight;
}

function showTyping(conv) {
  if (!conv || conv.ended) return;
  conv.typing.hidden = false;
  renderTab(conv);
  clearTimeout(conv.typingTimer);
  conv.typingTimer = setTimeout(() => hideTyping(conv), 5000);
}

function hideTyping(conv) {
  clearTimeout(conv.typingTimer);
  if (conv.typing.hidden) return;
  conv.typing.hidden = true;
  renderTab(conv);
}

function convOfPending(clientId) {
  for (const conv of state.convs.values()) if (conv.thread.pending.has(clientId)) return conv;
  return null;
}

// ---- writing --------------------------------------------------------------------------------

function sendMessage(conv) {
  const text = conv.text.value;
  if (!text.trim() || conv.ended) return;
  if (utf8Bytes(text) > state.config.max_message_bytes) {
    toast(`The message is too long (at most ${state.config.max_message_bytes} bytes). Split it.`, 'error');
    return;
  }
  const clientId = uuid();
  conv.thread.addPending(clientId, { from: 'counsellor', text, ts: new Date().toISOString() });
  conv.text.value = '';
  updateCounter(conv);
  stick(conv, true);
  state.link.send({ type: 'message', conversation: conv.id, text, client_msg_id: clientId });
}

function resend(conv, msg) {
  const entry = conv.thread.pending.get(msg.client_msg_id);
  if (!entry) return;
  entry.msg.state = 'sending';
  entry.msg.why = null;
  relabelAll(conv);
  state.link.send({ type: 'message', conversation: conv.id, text: entry.msg.text, client_msg_id: msg.client_msg_id });
}

function updateCounter(conv) {
  if (conv.channel !== 'sms') return;
  setText(conv.counter, smsDescribe(conv.text.value));
}

function insertAtCursor(textarea, text) {
  const { selectionStart: start, selectionEnd: end, value } = textarea;
  const before = value.slice(0, start);
  const spacer = before && !/\s$/.test(before) ? ' ' : '';
  textarea.value = `${before}${spacer}${text}${value.slice(end)}`;
  const caret = before.length + spacer.length + text.length;
  textarea.setSelectionRange(caret, caret);
}

main().catch((e) => toast(`The console failed to start: ${e.message}`, 'error'));
