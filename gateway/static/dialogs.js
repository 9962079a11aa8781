// The console's two dialogs: transfer a conversation (to a skill set or a named colleague) and
// close it (an outcome and tags from the configuration). Built from data with dom.js; the frames
// go out through the console's `send`.

import { $, $$, h, fill, setText } from './dom.js';
import { api, toast } from './staff.js';

/** Hands `conv` on: to the queue with chosen skills, or to a named colleague with room. */
export async function openTransfer(conv, config, send) {
  const dialog = $('#transfer-dialog');
  let colleagues = [];
  try {
    colleagues = await api('/api/colleagues');
  } catch (e) {
    toast(`Could not list colleagues: ${e.message}`, 'error');
  }
  const skills = [...config.languages, ...config.topics];
  const toQueue = h('input', { type: 'radio', name: 'target', id: 'to-queue', value: 'queue', checked: true });
  const toPerson = h('input', { type: 'radio', name: 'target', id: 'to-person', value: 'person' });
  const person = h(
    'select',
    { id: 'transfer-person' },
    h('option', { value: '' }, 'Choose a colleague…'),
    colleagues.map((c) => h('option', { value: c.username, disabled: !c.has_room }, `${c.display_name || c.username} (${c.has_room ? 'available' : c.status === 'available' ? 'full' : c.status})`)),
  );
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    h('h2', { id: 'transfer-title' }, `Transfer ${conv.alias}`),
    h('p', { class: 'hint' }, 'The contact is told they are being connected to another counsellor; they are not greeted again.'),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Hand over to'),
      h('p', { class: 'radio' }, toQueue, h('label', { for: 'to-queue' }, 'The queue, for counsellors with these skills')),
      h('div', { class: 'skill-grid' }, skills.map((s) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'skill', value: s, checked: s === conv.lang }), s))),
      h('p', { class: 'radio' }, toPerson, h('label', { for: 'to-person' }, 'A named colleague')),
      h('label', { for: 'transfer-person', class: 'sr-only' }, 'Colleague'),
      person,
    ),
    error,
    h('p', { class: 'dialog-actions' }, h('button', { type: 'button', value: 'cancel', onclick: () => dialog.close() }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Transfer')),
  );
  person.addEventListener('change', () => {
    toPerson.checked = true;
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    let frame;
    if (toPerson.checked) {
      if (!person.value) {
        setText(error, 'Choose a colleague.');
        return;
      }
      frame = { type: 'transfer', conversation: conv.id, counsellor: person.value };
    } else {
      const chosen = $$('input[name="skill"]:checked', form).map((i) => i.value);
      if (!chosen.length) {
        setText(error, 'Choose at least one skill.');
        return;
      }
      frame = { type: 'transfer', conversation: conv.id, skills: chosen };
    }
    send(frame);
    dialog.close();
  });
  fill(dialog, form);
  dialog.showModal();
}

/** Ends `conv` with an outcome and up to 10 tags, both lists from the configuration. */
export function openClose(conv, config, send) {
  const dialog = $('#close-dialog');
  const outcome = h('select', { id: 'close-outcome', required: true }, h('option', { value: '' }, 'Choose an outcome…'), config.outcomes.map((o) => h('option', { value: o }, o.replace(/[-_]/g, ' '))));
  const error = h('p', { class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    h('h2', { id: 'close-title' }, `Close ${conv.alias}`),
    h('div', { class: 'field' }, h('label', { for: 'close-outcome' }, 'Outcome'), outcome),
    h('fieldset', {}, h('legend', {}, 'Tags (up to 10)'), h('div', { class: 'skill-grid' }, config.tags.map((t) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'tag', value: t }), t.replace(/[-_]/g, ' '))))),
    error,
    h('p', { class: 'dialog-actions' }, h('button', { type: 'button', onclick: () => dialog.close() }, 'Cancel'), h('button', { type: 'submit', class: 'danger' }, 'Close conversation')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const tags = $$('input[name="tag"]:checked', form).map((i) => i.value);
    if (!outcome.value) {
      setText(error, 'Choose an outcome.');
      outcome.focus();
      return;
    }
    if (tags.length > 10) {
      setText(error, 'At most 10 tags.');
      return;
    }
    send({ type: 'close', conversation: conv.id, outcome: outcome.value, tags });
    dialog.close();
  });
  fill(dialog, form);
  dialog.showModal();
  outcome.focus();
}
