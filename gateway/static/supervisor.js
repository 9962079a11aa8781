// The supervisor dashboard: who waits (by urgency and channel, the longest wait), the queue, the
// counsellors, today's figures, and the live conversations to monitor, whisper in, re-grade or
// reassign. Refreshed every 2 s without reloading; actions go over the staff socket.
//
// Text from contacts (seen while monitoring) is only ever set as text (dom.js).

import { $, h, fill, setText, uuid, timeOf, clock } from './dom.js';
import { Thread } from './thread.js';
import {
  api, whoAmI, login, logout, toast, urgencyBadge, staffLink, connectionText, reconcile, Chime, URGENCIES,
} from './staff.js';
import { askFor, renderRequests } from './breakglass.js';

const REFRESH_MS = 2000;
const RANK = { critical: 0, high: 1, normal: 2, low: 3 };
const chime = new Chime();
const state = {
  me: null,
  queue: [],
  counsellors: [],
  live: [],
  stats: null,
  fetchedAt: Date.now(),
  monitoring: null,
  link: null,
  alarm: '',
  failing: false,
};

async function main() {
  let me = await whoAmI().catch(() => null);
  if (!me) me = await login($('#login'), { title: 'Supervisor dashboard' });
  $('#login').hidden = true;
  state.me = me;
  if (!['supervisor', 'admin'].includes(me.role)) {
    const el = $('#refused');
    fill(el, 'This page is for supervisors. ', h('a', { href: '/console' }, 'Open the console'), ' · ', h('button', { type: 'button', class: 'small', onclick: logout }, 'Log out'));
    el.hidden = false;
    return;
  }
  setText($('#whoami'), `${me.display_name || me.username} · ${me.role}`);
  $('#tools').hidden = false;
  $('#dash').hidden = false;
  $('#logout').addEventListener('click', logout);
  $('#sound').addEventListener('click', (event) => {
    chime.enabled = !chime.enabled;
    event.currentTarget.setAttribute('aria-pressed', String(chime.enabled));
    setText(event.currentTarget, chime.enabled ? 'Alarm sound on' : 'Alarm sound off');
  });
  if (me.role === 'supervisor') {
    state.link = staffLink({
      onFrame,
      onState: (name, detail) => {
        const text = connectionText(name, detail);
        setText($('#conn'), text ? `Live actions: ${text}` : '');
        $('#conn').hidden = !text || name === 'open';
      },
    });
    state.link.connect();
  }
  await refresh();
  setInterval(refresh, REFRESH_MS);
  setInterval(renderClocks, 1000);
}

function send(frame) {
  if (!state.link) {
    toast('Only supervisors can act on conversations.', 'error');
    return false;
  }
  if (!state.link.send(frame)) {
    toast('Not connected: try again in a moment.', 'error');
    return false;
  }
  return true;
}

function localMidnight() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

async function refresh() {
  try {
    const [queue, counsellors, live, stats] = await Promise.all([
      api('/api/queue'),
      api('/api/counsellors'),
      api('/api/conversations'),
      api(`/api/stats?since=${localMidnight()}`),
    ]);
    Object.assign(state, { queue, counsellors, live, stats, fetchedAt: Date.now(), failing: false });
    render();
    if (state.me.role === 'supervisor') renderRequests(await api('/api/break-glass'), state.me, refresh);
  } catch (e) {
    if (e.status === 401) {
      location.reload();
      return;
    }
    if (!state.failing) toast(`Cannot refresh the dashboard: ${e.message}`, 'error');
    state.failing = true;
    setText($('#updated'), 'Not updating: the gateway cannot be reached');
  }
}

// ---- rendering ------------------------------------------------------------------------------

function waitedNow(item) {
  return item.waited_s + Math.floor((Date.now() - state.fetchedAt) / 1000);
}

function tile(name, label, value, alert) {
  return h('div', { class: `tile${alert ? ' alert' : ''}`, id: `tile-${name}` }, h('dt', {}, label), h('dd', {}, value));
}

function render() {
  const q = [...state.queue].sort((a, b) => RANK[a.urgency] - RANK[b.urgency] || b.waited_s - a.waited_s);
  const count = (u) => q.filter((c) => c.urgency === u).length;
  const longest = q.reduce((m, c) => Math.max(m, c.waited_s), 0);
  const free = state.counsellors.filter((c) => c.status === 'available' && c.load < c.capacity);
  const online = state.counsellors.filter((c) => c.status !== 'offline');
  fill(
    $('#now-tiles'),
    tile('waiting', 'Waiting now', String(q.length), q.length > 0 && free.length === 0),
    tile('critical', 'Critical', String(count('critical')), count('critical') > 0),
    tile('high', 'High', String(count('high'))),
    tile('normal', 'Normal', String(count('normal'))),
    tile('low', 'Low', String(count('low'))),
    h('div', { class: 'tile', id: 'tile-longest' }, h('dt', {}, 'Longest wait'), h('dd', { id: 'longest' }, clock(longest))),
    tile('free', 'Counsellors free', `${free.length} of ${online.length}`, q.length > 0 && free.length === 0),
  );
  const channels = {};
  for (const c of q) channels[c.channel] = (channels[c.channel] || 0) + 1;
  const byChannel = Object.entries(channels).map(([ch, n]) => `${ch}: ${n}`).join(' · ');
  setText($('#by-channel'), q.length ? `Waiting by channel: ${byChannel}` : 'Nobody is waiting.');
  renderToday();
  renderQueue(q);
  renderCounsellors();
  renderLive();
  renderAlarm(q, free);
  setText($('#updated'), `Live · updated ${new Date(state.fetchedAt).toLocaleTimeString()}`);
}

function renderToday() {
  const s = state.stats;
  if (!s) return;
  const secs = (v) => (v === null || v === undefined ? '–' : clock(Math.round(v)));
  const share = s.within_target === null || s.within_target === undefined ? '–' : `${Math.round(s.within_target * 100)} %`;
  fill(
    $('#today-tiles'),
    tile('answered', 'Answered', String(s.answered)),
    tile('abandoned', 'Abandoned', String(s.abandoned), s.abandoned > 0),
    tile('average', 'Average wait', secs(s.average_wait_s)),
    tile('p90', '90th percentile wait', secs(s.p90_wait_s)),
    tile('within', `Answered within ${s.target_wait_s} s`, share),
  );
}

function urgencySelect(item) {
  const select = h('select', { 'aria-label': `Urgency of ${item.alias}` }, URGENCIES.map((u) => h('option', { value: u }, u)));
  select.value = item.urgency;
  select.addEventListener('change', () => {
    if (send({ type: 'urgency', conversation: select.closest('tr').dataset.key, level: select.value })) {
      setTimeout(refresh, 300);
    }
  });
  return select;
}

function setSelect(select, value) {
  if (document.activeElement !== select && select.value !== value) select.value = value;
}

function renderQueue(q) {
  const tbody = $('#queue-table tbody');
  if (!q.length) {
    fill(tbody, h('tr', { class: 'empty-row' }, h('td', { colspan: '5' }, 'Nobody is waiting.')));
    return;
  }
  for (const row of Array.from(tbody.rows)) if (!row.dataset.key) row.remove();
  reconcile(
    tbody,
    q,
    (c) => c.conversation,
    (c) => h('tr', {}, h('th', { scope: 'row' }), h('td'), h('td'), h('td', {}, urgencySelect(c)), h('td', { class: 'waited' })),
    (row, c) => {
      const [alias, channel, lang, urgency, waited] = row.cells;
      setText(alias, c.alias);
      setText(channel, c.channel);
      setText(lang, (c.lang || '').toUpperCase());
      setSelect(urgency.firstChild, c.urgency);
      row.classList.toggle('critical', c.urgency === 'critical');
      row.dataset.waited = String(c.waited_s);
      setText(waited, clock(waitedNow(c)));
    },
  );
}

function renderCounsellors() {
  const tbody = $('#counsellors-table tbody');
  const rows = [...state.counsellors].sort((a, b) => (a.status === 'offline') - (b.status === 'offline') || a.username.localeCompare(b.username));
  if (!rows.length) {
    fill(tbody, h('tr', { class: 'empty-row' }, h('td', { colspan: '4' }, 'No counsellor accounts yet.')));
    return;
  }
  for (const row of Array.from(tbody.rows)) if (!row.dataset.key) row.remove();
  reconcile(
    tbody,
    rows,
    (c) => c.username,
    () => h('tr', {}, h('th', { scope: 'row' }), h('td', {}, h('span', { class: 'status-dot' })), h('td'), h('td')),
    (row, c) => {
      const [name, status, load, skills] = row.cells;
      setText(name, c.display_name && c.display_name !== c.username ? `${c.display_name} (${c.username})` : c.username);
      const dot = status.firstChild;
      dot.className = `status-dot ${c.status}`;
      setText(dot, c.status);
      setText(load, `${c.load} / ${c.capacity}`);
      setText(skills, (c.skills || []).join(', '));
    },
  );
}

function renderLive() {
  const tbody = $('#live-table tbody');
  const names = new Map(state.counsellors.map((c) => [c.username, c.display_name || c.username]));
  if (!state.live.length) {
    fill(tbody, h('tr', { class: 'empty-row' }, h('td', { colspan: '6' }, 'No live conversations.')));
    return;
  }
  for (const row of Array.from(tbody.rows)) if (!row.dataset.key) row.remove();
  reconcile(
    tbody,
    state.live,
    (c) => c.conversation,
    (c) => {
      const target = h('select', { 'aria-label': `Reassign ${c.alias} to` });
      const actions = h(
        'div',
        { class: 'row-actions' },
        h('button', { type: 'button', class: 'small', onclick: () => startMonitor(c.conversation) }, 'Monitor'),
        target,
        h('button', { type: 'button', class: 'small', onclick: () => reassign(c.conversation, target.value) }, 'Reassign'),
        c.channel !== 'webchat' && state.me.role === 'supervisor'
          ? h('button', { type: 'button', class: 'small', onclick: () => askFor(c, refresh) }, 'Break glass')
          : null,
      );
      return h('tr', {}, h('th', { scope: 'row' }), h('td'), h('td'), h('td', {}, urgencySelect(c)), h('td'), h('td', {}, actions));
    },
    (row, c) => {
      const [alias, channel, lang, urgency, counsellor, actions] = row.cells;
      setText(alias, c.alias);
      setText(channel, c.channel);
      setText(lang, (c.lang || '').toUpperCase());
      setSelect(urgency.firstChild, c.urgency);
      setText(counsellor, names.get(c.counsellor) || c.counsellor || '');
      const target = actions.querySelector('select');
      if (document.activeElement !== target) {
        const choices = state.counsellors.filter((x) => x.username !== c.counsellor && x.status === 'available' && x.load < x.capacity);
        const keep = target.value;
        fill(target, h('option', { value: '' }, choices.length ? 'to…' : 'nobody free'), choices.map((x) => h('option', { value: x.username }, x.display_name || x.username)));
        if (choices.some((x) => x.username === keep)) target.value = keep;
      }
    },
  );
}

function renderAlarm(q, free) {
  const critical = q.filter((c) => c.urgency === 'critical');
  const lines = [];
  if (critical.length) {
    const longest = critical.reduce((m, c) => Math.max(m, c.waited_s), 0);
    lines.push(`${critical.length} critical ${critical.length === 1 ? 'contact is' : 'contacts are'} waiting (longest ${clock(longest)}). Someone must answer now.`);
  }
  if (q.length && !free.length) {
    lines.push(`${q.length} ${q.length === 1 ? 'person is' : 'people are'} waiting and no counsellor is available.`);
  }
  const alarm = $('#alarm');
  const text = lines.join(' ');
  if (text !== state.alarm) {
    fill(alarm, lines.map((l) => h('p', {}, l)));
    if (text && !state.alarm) chime.play(true);
    state.alarm = text;
  }
  alarm.hidden = !text;
  document.title = text ? '⚠ Alarm · Supervisor' : 'Supervisor · Helpline';
}

function renderClocks() {
  for (const row of $('#queue-table tbody').rows) {
    if (!row.dataset.key) continue;
    setText(row.cells[4], clock(waitedNow({ waited_s: Number(row.dataset.waited) })));
  }
  const longest = $('#longest');
  if (longest && state.queue.length) {
    setText(longest, clock(waitedNow({ waited_s: state.queue.reduce((m, c) => Math.max(m, c.waited_s), 0) })));
  }
}

// ---- actions --------------------------------------------------------------------------------

function reassign(conversation, username) {
  if (!username) {
    toast('Choose a counsellor to reassign to.', 'error');
    return;
  }
  if (send({ type: 'transfer', conversation, counsellor: username })) {
    toast('Reassigning…');
    setTimeout(refresh, 400);
  }
}

function startMonitor(id) {
  const item = state.live.find((c) => c.conversation === id);
  if (!item || !send({ type: 'monitor', conversation: id })) return;
  const section = $('#monitor');
  const list = h('ol', { class: 'messages' });
  const log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages', tabindex: '0' }, list);
  const mon = { id, alias: item.alias, thread: new Thread(list, renderMessage), log, ended: false };
  state.monitoring = mon;
  const text = h('textarea', { id: 'whisper-text', rows: '2' });
  const form = h(
    'form',
    { class: 'whisper-form' },
    h('div', { class: 'field' }, h('label', { for: 'whisper-text' }, 'Whisper to the counsellor (the contact never sees it)'), text),
    h('button', { type: 'submit', class: 'primary' }, 'Whisper'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!text.value.trim() || mon.ended) return;
    const clientId = uuid();
    mon.thread.addPending(clientId, { from: 'supervisor', whisper: true, text: text.value, ts: new Date().toISOString() });
    send({ type: 'whisper', conversation: id, text: text.value, client_msg_id: clientId });
    text.value = '';
    log.scrollTop = log.scrollHeight;
  });
  const counsellor = state.counsellors.find((c) => c.username === item.counsellor);
  const name = counsellor ? counsellor.display_name || counsellor.username : item.counsellor || 'a counsellor';
  mon.status = h('p', { class: 'hint', id: 'monitor-status' }, `Following silently: ${item.alias} with ${name}.`);
  fill(
    section,
    h(
      'div',
      { class: 'monitor-head' },
      h('h2', { id: 'monitor-title' }, `Monitoring ${item.alias}`),
      h('button', { type: 'button', class: 'small', onclick: stopMonitor }, 'Stop monitoring'),
    ),
    mon.status,
    log,
    form,
  );
  section.hidden = false;
  section.scrollIntoView({ block: 'nearest' });
  text.focus();
}

function stopMonitor() {
  state.monitoring = null;
  $('#monitor').hidden = true;
}

function renderMessage(msg) {
  const who = msg.whisper || msg.from === 'supervisor' ? 'Supervisor whisper' : msg.from === 'contact' ? state.monitoring?.alias || 'Contact' : msg.from === 'counsellor' ? 'Counsellor' : 'System';
  const el = h(
    'li',
    { class: `msg from-${msg.whisper ? 'supervisor' : msg.from}${msg.whisper ? ' whisper' : ''}` },
    h('p', { class: 'who' }, who, ' ', h('time', { datetime: msg.ts || null }, timeOf(msg.ts))),
    h('p', { class: 'text' }, msg.text),
  );
  if (msg.client_msg_id) el.append(h('p', { class: 'state' }, 'Sending…'));
  return el;
}

function onFrame(frame) {
  const mon = state.monitoring;
  switch (frame.type) {
    case 'monitoring':
      if (mon && frame.conversation === mon.id) {
        for (const m of frame.history || []) addMonitored(mon, m);
        mon.log.scrollTop = mon.log.scrollHeight;
      }
      break;
    case 'message':
      if (mon && frame.conversation === mon.id) addMonitored(mon, frame);
      break;
    case 'ack':
      if (mon) {
        const entry = mon.thread.ack(frame.client_msg_id, frame.id);
        const s = entry && entry.el.querySelector('.state');
        if (s) setText(s, 'Sent ✓');
      }
      break;
    case 'ended':
      if (mon && frame.conversation === mon.id) {
        mon.ended = true;
        setText(mon.status, `This conversation has ended (${frame.reason}).`);
      }
      setTimeout(refresh, 300);
      break;
    case 'error': {
      const entry = mon && frame.client_msg_id ? mon.thread.pending.get(frame.client_msg_id) : null;
      if (entry) {
        const s = entry.el.querySelector('.state');
        if (s) setText(s, `Not sent: ${frame.message}`);
      }
      toast(frame.message || frame.code, 'error');
      break;
    }
    default:
      break;
  }
}

function addMonitored(mon, m) {
  const near = mon.log.scrollHeight - mon.log.scrollTop - mon.log.clientHeight < 120;
  mon.thread.add({ id: m.id, from: m.whisper ? 'supervisor' : m.from, whisper: !!m.whisper, text: String(m.text ?? ''), ts: m.ts });
  if (near) mon.log.scrollTop = mon.log.scrollHeight;
}

main().catch((e) => toast(`The dashboard failed to start: ${e.message}`, 'error'));
