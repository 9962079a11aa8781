// The contact's chat page (CONTRACT.md section 4). Mobile first; speaks ro, ru, uk and en.
//
// What it keeps: only the resume token and the chosen languages, in sessionStorage (gone when the
// tab closes, and wiped by the quick exit). Nothing in localStorage, no cookies. Every text from
// the helpline or the contact is put on the page as text (dom.js), never as HTML.

import { $, $$, h, fill, setText, uuid, utf8Bytes, timeOf } from './dom.js';
import { STRINGS, pickLanguage, translator } from './i18n.js';
import { Link } from './socket.js';
import { Thread } from './thread.js';

const CONFIG = readConfig();
const STORE_KEY = 'helpline.chat';
const EMBEDDED = window.self !== window.top;
/** Opened by widget.js, whose own bar carries the quick exit and the title on the host page. */
const IN_WIDGET = EMBEDDED && new URLSearchParams(location.search).get('embed') === '1';
/** Escape pressed twice within this time leaves at once. */
const ESCAPE_TWICE_MS = 1500;

const saved = load();
let lang = saved.lang && CONFIG.languages.includes(saved.lang) ? saved.lang : pickLanguage(CONFIG.languages);
let t = translator(lang);

const state = {
  phase: 'intro', // intro | chat | ended
  token: saved.token || null,
  chatLang: saved.chatLang || lang,
  topic: null,
  counsellor: null,
  assigned: false,
  queue: null, // {position, wait}
  conn: null, // the link's state
  established: false, // start/resume answered on this socket
  everOpen: false,
  lastTypingSent: 0,
  typingTimer: null,
  exiting: false,
  onEnded: null,
  endedReason: null,
};

const thread = new Thread($('#messages'), renderMessage);
let link = null;

function readConfig() {
  const fallback = {
    exit_url: 'https://www.google.com/',
    helpline_number: '116 111',
    emergency_number: '112',
    languages: ['ro', 'ru', 'uk', 'en'],
    topics: [],
    max_message_bytes: 4096,
  };
  try {
    return { ...fallback, ...JSON.parse($('#helpline-config').textContent) };
  } catch {
    return fallback;
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) || '{}') || {};
  } catch {
    return {};
  }
}

function save() {
  if (state.exiting) return;
  try {
    sessionStorage.setItem(
      STORE_KEY,
      JSON.stringify({ token: state.token, lang, chatLang: state.chatLang }),
    );
  } catch {
    /* private mode: the chat still works, it just cannot survive a reload */
  }
}

// ---- words on the page ----------------------------------------------------------------------

function applyLanguage() {
  t = translator(lang);
  document.documentElement.lang = lang;
  document.title = t('title');
  for (const el of $$('[data-t]')) setText(el, t(el.dataset.t));
  for (const el of $$('[data-t-placeholder]')) el.placeholder = t(el.dataset.tPlaceholder);
  for (const el of $$('[data-t-aria-label]')) el.setAttribute('aria-label', t(el.dataset.tAriaLabel));
  setText($('#helpline-number'), CONFIG.helpline_number);
  setText($('#emergency-number'), CONFIG.emergency_number);
  $('#call-helpline').href = `tel:${CONFIG.helpline_number.replace(/[^\d+]/g, '')}`;
  $('#call-emergency').href = `tel:${CONFIG.emergency_number.replace(/[^\d+]/g, '')}`;
  setText($('#danger-line'), t('danger', { n: CONFIG.emergency_number }));
  buildPickers();
  for (const { msg, el } of thread.byId.values()) relabel(el, msg);
  for (const { msg, el } of thread.pending.values()) relabel(el, msg);
  renderStatus();
  if (state.phase === 'ended') setText($('#ended-reason'), endedText(state.endedReason));
}

function buildPickers() {
  const select = $('#ui-lang');
  fill(
    select,
    CONFIG.languages
      .filter((l) => STRINGS[l])
      .map((l) => h('option', { value: l, lang: l, selected: l === lang }, STRINGS[l].langName)),
  );
  const chosen = state.chatLang;
  fill(
    $('#lang-choices'),
    CONFIG.languages.map((l) =>
      h(
        'label',
        { class: 'chip', lang: STRINGS[l] ? l : null },
        h('input', { type: 'radio', name: 'chat-lang', value: l, checked: l === chosen }),
        h('span', {}, STRINGS[l]?.langName || l.toUpperCase()),
      ),
    ),
  );
  const topic = $('#topic');
  const current = topic.value;
  fill(
    topic,
    h('option', { value: '' }, t('topicNone')),
    CONFIG.topics.map((name) =>
      h('option', { value: name, selected: name === current }, topicLabel(name)),
    ),
  );
}

function topicLabel(name) {
  const label = t(`topics.${name}`);
  return label === `topics.${name}` ? name.replace(/-/g, ' ') : label;
}

// ---- messages -------------------------------------------------------------------------------

function renderMessage(msg) {
  const mine = msg.from === 'contact';
  const el = h(
    'li',
    { class: `msg from-${mine ? 'contact' : msg.from === 'counsellor' ? 'counsellor' : 'system'}` },
    h('p', { class: 'who' }, h('span', { class: 'who-name' }), ' ', h('time', { class: 'when' })),
    h('p', { class: 'text' }, msg.text),
  );
  if (mine) el.append(h('p', { class: 'state' }));
  relabel(el, msg);
  return el;
}

/** The parts of a message that depend on the language and on its delivery state. */
function relabel(el, msg) {
  const name = msg.from === 'contact' ? t('you') : msg.from === 'counsellor' ? state.counsellor || t('counsellor') : t('helpline');
  setText(el.querySelector('.who-name'), name);
  const when = el.querySelector('.when');
  if (msg.ts) {
    when.dateTime = msg.ts;
    setText(when, timeOf(msg.ts, lang));
  }
  const stateEl = el.querySelector('.state');
  if (!stateEl) return;
  const delivery = msg.state || 'sent';
  stateEl.className = `state ${delivery}`;
  if (delivery === 'failed') {
    fill(stateEl, h('button', { type: 'button', class: 'retry', onclick: () => retry(msg) }, t('notSent')));
  } else {
    fill(stateEl, t(delivery === 'sending' ? 'sending' : delivery === 'delivered' ? 'delivered' : 'sent'));
  }
}

function setDelivery(entry, delivery) {
  if (!entry) return;
  entry.msg.state = delivery;
  relabel(entry.el, entry.msg);
}

function addNotice(text) {
  thread.note(h('li', { class: 'notice' }, h('p', { class: 'text' }, text)));
  stickToBottom();
}

function nearBottom() {
  const log = $('#log');
  return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
}

function stickToBottom(force) {
  const log = $('#log');
  if (force || nearBottom()) log.scrollTop = log.scrollHeight;
}

// ---- the conversation -----------------------------------------------------------------------

function show(phase) {
  state.phase = phase;
  $('#intro').hidden = phase !== 'intro';
  $('#chat').hidden = phase === 'intro';
  $('#composer').hidden = phase !== 'chat';
  $('#endbar').hidden = phase !== 'chat';
  $('#ended').hidden = phase !== 'ended';
  document.body.classList.toggle('chatting', phase !== 'intro');
  renderStatus();
}

function begin() {
  show('chat');
  link = new Link('/ws/chat', {
    onOpen: opened,
    onFrame: onFrame,
    onState: (name, detail) => {
      state.conn = { name, detail };
      if (name !== 'open') state.established = false;
      if (name === 'open') state.everOpen = true;
      renderStatus();
    },
  });
  link.connect();
}

function opened() {
  state.established = false;
  if (state.token) {
    const frame = { type: 'resume', token: state.token };
    if (thread.lastId) frame.last_seen = thread.lastId;
    link.send(frame);
  } else {
    const frame = { type: 'start', lang: state.chatLang };
    if (state.topic) frame.topic = state.topic;
    link.send(frame);
  }
}

/** Resends every message not yet acknowledged (the gateway stores each client_msg_id once). */
function flush() {
  for (const { clientId, msg } of thread.unacked()) {
    if (msg.state === 'failed') continue;
    link.send({ type: 'message', text: msg.text, client_msg_id: clientId });
  }
}

function onFrame(frame) {
  if (state.exiting) {
    // The page is already blank: only the end of the conversation still matters.
    if (frame.type === 'ended' && state.onEnded) state.onEnded();
    return;
  }
  switch (frame.type) {
    case 'started':
      state.token = frame.token;
      save();
      state.established = true;
      flush();
      break;
    case 'resumed':
      state.established = true;
      flush();
      break;
    case 'queued':
      state.assigned = false;
      state.queue = { position: frame.position, wait: frame.estimated_wait_s };
      break;
    case 'assigned':
      state.assigned = true;
      state.counsellor = frame.counsellor || null;
      state.queue = null;
      for (const entry of thread.byId.values()) {
        if (entry.msg.from === 'contact') setDelivery(entry, 'delivered');
        else relabel(entry.el, entry.msg);
      }
      break;
    case 'ack':
      setDelivery(thread.ack(frame.client_msg_id, frame.id), state.assigned ? 'delivered' : 'sent');
      break;
    case 'message': {
      const msg = { id: frame.id, from: frame.from, text: String(frame.text ?? ''), ts: frame.ts };
      if (msg.from === 'contact') msg.state = state.assigned ? 'delivered' : 'sent';
      if (thread.add(msg)) stickToBottom(msg.from === 'contact');
      if (msg.from === 'counsellor') hideTyping();
      break;
    }
    case 'notice':
      if (frame.code === 'transferred') {
        state.assigned = false;
        state.counsellor = null;
      }
      if (frame.text) addNotice(String(frame.text));
      break;
    case 'typing':
      showTyping();
      break;
    case 'ended':
      finish(frame.reason);
      break;
    case 'forgotten':
      forgotten();
      break;
    case 'error':
      onError(frame);
      break;
    default:
      break;
  }
  renderStatus();
}

function onError(frame) {
  const entry = frame.client_msg_id ? thread.pending.get(frame.client_msg_id) : null;
  switch (frame.code) {
    case 'unknown_token':
      state.token = null;
      save();
      finish('cannot_resume');
      return;
    case 'ended':
      finish(state.endedReason || 'counsellor_closed');
      return;
    case 'rate_limited':
    case 'unavailable':
      // Kept as pending: sent again shortly, or at the next reconnect.
      if (entry) setTimeout(() => state.established && flushOne(frame.client_msg_id), 10000);
      return;
    default:
      if (entry) setDelivery(entry, 'failed');
  }
}

function flushOne(clientId) {
  const entry = thread.pending.get(clientId);
  if (entry && entry.msg.state !== 'failed') {
    link.send({ type: 'message', text: entry.msg.text, client_msg_id: clientId });
  }
}

function retry(msg) {
  const entry = thread.pending.get(msg.client_msg_id);
  if (!entry || state.phase !== 'chat') return;
  setDelivery(entry, 'sending');
  if (state.established) flushOne(msg.client_msg_id);
}

function send(text) {
  if (!text.trim()) return false;
  const error = $('#compose-error');
  if (utf8Bytes(text) > CONFIG.max_message_bytes) {
    setText(error, t('tooLong'));
    error.hidden = false;
    return false;
  }
  error.hidden = true;
  const clientId = uuid();
  thread.addPending(clientId, { from: 'contact', text, ts: new Date().toISOString() });
  stickToBottom(true);
  if (state.established) link.send({ type: 'message', text, client_msg_id: clientId });
  return true;
}

function finish(reason) {
  state.endedReason = reason;
  state.token = null;
  state.established = false;
  save();
  if (link) link.stop();
  hideTyping();
  for (const entry of thread.pending.values()) setDelivery(entry, 'failed');
  setText($('#ended-reason'), endedText(reason));
  show('ended');
  if (state.onEnded) state.onEnded();
}

/** The conversation is erased on the server: nothing of it stays on this page either. */
function forgotten() {
  thread.clear();
  finish('forgotten');
}

/**
 * Asks the server to erase the conversation: over the open socket, or else over a short-lived one
 * that names it by its resume token.
 */
function forget() {
  if (link && link.open && state.established) {
    link.send({ type: 'forget' });
    return;
  }
  const token = state.token;
  if (!token) {
    forgotten();
    return;
  }
  if (link) link.stop();
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/chat`);
  ws.addEventListener('open', () => ws.send(JSON.stringify({ type: 'forget', token })));
  ws.addEventListener('message', (e) => {
    try {
      const frame = JSON.parse(e.data);
      if (frame.type === 'forgotten' || (frame.type === 'error' && frame.code === 'unknown_token')) forgotten();
    } catch {
      /* not JSON */
    }
  });
}

function endedText(reason) {
  if (reason === 'cannot_resume') return t('cannotResume');
  const text = t(`ended.${reason}`);
  return text.startsWith('ended.') ? t('ended.counsellor_closed') : text;
}

function showTyping() {
  const el = $('#typing');
  setText(el, t('typing', { name: state.counsellor || t('counsellor') }));
  el.hidden = false;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, 5000);
}

function hideTyping() {
  clearTimeout(state.typingTimer);
  $('#typing').hidden = true;
}

function renderStatus() {
  if (state.exiting) return;
  const status = $('#status');
  if (state.phase !== 'chat') {
    status.hidden = true;
    $('#conn').hidden = true;
    return;
  }
  status.hidden = false;
  if (state.assigned) {
    const name = state.counsellor || t('counsellor');
    fill(
      status,
      h('span', { class: 'avatar', 'aria-hidden': 'true' }, name.trim().charAt(0).toUpperCase()),
      h('span', { class: 'status-text' }, t('assigned', { name })),
    );
    status.className = 'status assigned';
  } else if (state.queue) {
    const { position, wait } = state.queue;
    const lines = [position ? t('position', { n: position }) : t('inLine')];
    if (typeof wait === 'number') {
      lines.push(wait < 60 ? t('waitSoon') : t('wait', { m: Math.ceil(wait / 60) }));
    }
    fill(
      status,
      h('span', { class: 'spinner', 'aria-hidden': 'true' }),
      h('span', { class: 'status-text' }, h('strong', {}, lines[0]), lines[1] ? [' ', lines[1]] : null, h('br'), h('small', {}, t('waitingHelp'))),
    );
    status.className = 'status waiting';
  } else {
    fill(status, h('span', { class: 'spinner', 'aria-hidden': 'true' }), h('span', { class: 'status-text' }, t('connecting')));
    status.className = 'status waiting';
  }
  const conn = $('#conn');
  const c = state.conn;
  let text = '';
  if (c && c.name === 'offline') text = t('offline');
  else if (c && c.name === 'retrying') text = t('retrying', { s: c.detail });
  else if (c && c.name === 'connecting' && state.everOpen) text = t('connecting');
  setText(conn, text);
  conn.hidden = !text;
}

// ---- quick exit -----------------------------------------------------------------------------

/**
 * Leaves at once: the page goes blank, sessionStorage is wiped, the conversation is ended on the
 * server (waiting at most 0.7 s for it), and the neutral site replaces this page in the history.
 */
function quickExit({ fromHost = false } = {}) {
  if (state.exiting) return;
  state.exiting = true;
  const token = state.token;
  document.body.replaceChildren();
  document.title = '';
  try {
    sessionStorage.clear();
  } catch {
    /* nothing stored */
  }
  thread.clear();
  endOnServer(token).then(() => {
    if (!EMBEDDED) {
      location.replace(CONFIG.exit_url);
      return;
    }
    // In the widget the host page leaves (widget.js replaces its location); this frame follows
    // only if no widget answers, so a neutral site that refuses framing is rarely shown here.
    try {
      window.parent.postMessage({ helpline: fromHost ? 'exited' : 'exit' }, '*');
    } catch {
      /* the host page is gone already */
    }
    if (!fromHost) setTimeout(() => location.replace(CONFIG.exit_url), 1500);
  });
}

function endOnServer(token) {
  return new Promise((resolve) => {
    let settled = false;
    const done = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    setTimeout(done, 700);
    if (link && link.open && state.established) {
      state.onEnded = done;
      link.send({ type: 'end' });
      return;
    }
    if (link) link.stop();
    if (!token) {
      done();
      return;
    }
    try {
      const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/chat`);
      ws.addEventListener('open', () => {
        ws.send(JSON.stringify({ type: 'resume', token }));
        ws.send(JSON.stringify({ type: 'end' }));
      });
      ws.addEventListener('message', (e) => {
        try {
          if (JSON.parse(e.data).type === 'ended') done();
        } catch {
          /* not JSON */
        }
      });
      ws.addEventListener('close', done);
      ws.addEventListener('error', done);
    } catch {
      done();
    }
  });
}

// ---- wiring ---------------------------------------------------------------------------------

function wire() {
  $('#exit').addEventListener('click', () => quickExit());
  let lastEscape = 0;
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return;
    const now = Date.now();
    if (now - lastEscape < ESCAPE_TWICE_MS) quickExit();
    else lastEscape = now;
  });
  window.addEventListener('message', (event) => {
    if (event.source === window.parent && event.data && event.data.helpline === 'exit') {
      quickExit({ fromHost: true });
    }
  });

  $('#ui-lang').addEventListener('change', (event) => {
    lang = event.target.value;
    if (state.phase === 'intro') state.chatLang = lang;
    save();
    applyLanguage();
  });
  $('#lang-choices').addEventListener('change', (event) => {
    if (event.target.name !== 'chat-lang') return;
    state.chatLang = event.target.value;
    if (STRINGS[state.chatLang]) {
      lang = state.chatLang;
      applyLanguage();
    }
    save();
  });
  $('#start-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.topic = $('#topic').value || null;
    state.token = null;
    save();
    begin();
    $('#text').focus();
  });

  const text = $('#text');
  $('#composer').addEventListener('submit', (event) => {
    event.preventDefault();
    if (send(text.value)) {
      text.value = '';
      grow(text);
    }
    text.focus();
  });
  text.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $('#composer').requestSubmit();
    }
  });
  text.addEventListener('input', () => {
    grow(text);
    const now = Date.now();
    if (state.established && text.value.trim() && now - state.lastTypingSent > 2000) {
      state.lastTypingSent = now;
      link.send({ type: 'typing' });
    }
  });

  $('#end').addEventListener('click', () => {
    $('#end').hidden = true;
    $('#end-confirm').hidden = false;
    $('#end-no').focus();
  });
  $('#end-no').addEventListener('click', () => {
    $('#end-confirm').hidden = true;
    $('#end').hidden = false;
    $('#end').focus();
  });
  $('#end-yes').addEventListener('click', () => {
    $('#end-confirm').hidden = true;
    $('#end').hidden = false;
    if (link && link.open && state.established) link.send({ type: 'end' });
    else finish('contact_ended');
  });
  $('#forget').addEventListener('click', () => {
    $('#forget').hidden = true;
    $('#forget-confirm').hidden = false;
    $('#forget-no').focus();
  });
  $('#forget-no').addEventListener('click', () => {
    $('#forget-confirm').hidden = true;
    $('#forget').hidden = false;
    $('#forget').focus();
  });
  $('#forget-yes').addEventListener('click', () => {
    $('#forget-confirm').hidden = true;
    $('#forget').hidden = false;
    forget();
  });
  $('#new-chat').addEventListener('click', () => {
    thread.clear();
    Object.assign(state, { counsellor: null, assigned: false, queue: null, endedReason: null, everOpen: false });
    link = null;
    show('intro');
    $('#start').focus();
  });
}

/** Lets the message box grow with its text, up to about six lines. */
function grow(textarea) {
  textarea.style.height = 'auto';
  textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
}

wire();
document.body.classList.toggle('in-widget', IN_WIDGET);
applyLanguage();
if (state.token) begin();
else show('intro');
