// Break-glass on the supervisor dashboard: ask for a contact's phone number or chat id with a
// written reason, approve or deny a colleague's request, and see an approved one once. The rules
// (a second supervisor, the time limit, one reveal) are the gateway's; this page only shows them.
// The revealed address is set as text, kept nowhere (no storage) and gone when the panel closes.

import { $, h, fill, setText, clock } from './dom.js';
import { api, toast } from './staff.js';

const MIN_REASON = 20;

/** Opens the request form for live conversation `item` (not for web chat: it has no address). */
export function askFor(item, refresh) {
  const section = $('#break-glass');
  const reason = h('textarea', { id: 'bg-reason', rows: '3', minlength: String(MIN_REASON), maxlength: '500', required: true });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { class: 'whisper-form', id: 'bg-form' },
    h('h2', { id: 'bg-form-title' }, `Break glass: ${item.alias} (${item.channel})`),
    h('p', { class: 'hint' }, 'Only when you believe the child is in immediate danger. A second supervisor must approve; you then see the contact\'s address once. Every step is audited.'),
    h('div', { class: 'field' }, h('label', { for: 'bg-reason' }, 'Why is the child in immediate danger?'), reason),
    error,
    h('button', { type: 'submit', class: 'primary' }, 'Ask a second supervisor'),
    h('button', { type: 'button', class: 'small', onclick: () => { form.remove(); } }, 'Cancel'),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (reason.value.trim().length < MIN_REASON) {
      setText(error, `Write the reason in at least ${MIN_REASON} characters.`);
      return;
    }
    try {
      await api(`/api/conversations/${item.conversation}/break-glass`, { method: 'POST', body: { reason: reason.value.trim() } });
      form.remove();
      toast('Asked: a second supervisor must approve.');
      refresh();
    } catch (e) {
      setText(error, e.message);
    }
  });
  const old = $('#bg-form');
  if (old) old.remove();
  section.prepend(form);
  section.hidden = false;
  reason.focus();
}

/** Shows the open requests: others' to approve or deny, the caller's own to wait for or reveal. */
export function renderRequests(requests, me, refresh) {
  const section = $('#break-glass');
  const list = $('#bg-list');
  const rows = requests.map((r) => {
    const mine = r.requester === me.username;
    const left = `${clock(r.expires_in_s)} left`;
    const act = async (step) => {
      try {
        await api(`/api/break-glass/${r.request}/${step}`, { method: 'POST' });
        toast(step === 'approve' ? 'Approved.' : 'Denied.');
      } catch (e) {
        toast(e.message, 'error');
      }
      refresh();
    };
    let actions;
    if (!mine) {
      actions = [
        h('button', { type: 'button', class: 'small', onclick: () => act('approve') }, 'Approve'),
        h('button', { type: 'button', class: 'small', onclick: () => act('deny') }, 'Deny'),
      ];
    } else if (r.state === 'approved') {
      actions = h('button', { type: 'button', class: 'small primary', onclick: () => reveal(r) }, 'Show the address (once)');
    } else {
      actions = 'Waiting for a second supervisor';
    }
    return h(
      'li',
      { class: 'bg-request', 'data-request': r.request },
      h('p', {}, `${mine ? 'You' : r.requester} asked for the ${r.channel} address of conversation ${r.conversation.slice(0, 8)}… (${r.state}, ${left}): `, h('q', {}, r.reason)),
      h('div', { class: 'row-actions' }, actions),
    );
  });
  fill(list, rows);
  section.hidden = rows.length === 0 && !$('#bg-form') && !$('#bg-shown');
}

async function reveal(r) {
  try {
    const shown = await api(`/api/break-glass/${r.request}/reveal`, { method: 'POST' });
    const box = h(
      'div',
      { id: 'bg-shown', class: 'alarm', role: 'alert' },
      h('p', {}, `The ${shown.channel} address of conversation ${shown.conversation.slice(0, 8)}…: `, h('strong', { id: 'bg-address' }, shown.address)),
      h('p', { class: 'hint' }, 'Shown once: it can not be shown again. Write it where your disclosure procedure says, then close this.'),
      h('button', { type: 'button', class: 'small', onclick: () => { box.remove(); } }, 'Close'),
    );
    const old = $('#bg-shown');
    if (old) old.remove();
    $('#break-glass').prepend(box);
  } catch (e) {
    toast(e.message, 'error');
  }
}
