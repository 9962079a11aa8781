// One conversation's messages on screen, in stream order, each shown once.
//
// The gateway's stream ids (`<ms>-<seq>`) order messages; a message of ours shows at once as
// pending (keyed by its client_msg_id) and takes its id when the gateway acknowledges it. If the
// same message also arrives by replay (the ack was lost in a dropped connection and the message
// was resent), the copy is merged, never shown twice.

/** Compares two stream ids numerically: <0, 0 or >0. */
export function compareIds(a, b) {
  const [am, as] = String(a).split('-').map(Number);
  const [bm, bs] = String(b).split('-').map(Number);
  return am - bm || as - bs;
}

export class Thread {
  /**
   * @param {HTMLElement} list  the element messages go in (e.g. an <ol>)
   * @param {(msg: object) => HTMLElement} render  builds one message's element (text as text!)
   */
  constructor(list, render) {
    this.list = list;
    this.render = render;
    this.byId = new Map(); // stream id -> {el, msg}
    this.pending = new Map(); // client_msg_id -> {el, msg}
    this.lastId = null;
  }

  /**
   * Notes the id of a message received: replay after a reconnect starts after the newest. An ack
   * does not count: a counsellor's message stored just before ours may still be on its way, and
   * resuming after our own id would skip it (our replayed messages merge by id instead).
   */
  see(id) {
    if (id && (!this.lastId || compareIds(id, this.lastId) > 0)) this.lastId = id;
  }

  has(id) {
    return this.byId.has(id);
  }

  /** Adds a stored message (live or replayed); false if it is already shown. */
  add(msg) {
    if (!msg.id || this.byId.has(msg.id)) return false;
    this.see(msg.id);
    const entry = { msg, el: this.render(msg) };
    entry.el.dataset.id = msg.id;
    this.byId.set(msg.id, entry);
    this.place(entry);
    return true;
  }

  /** Shows a message of ours before it is stored. */
  addPending(clientId, msg) {
    const full = { ...msg, client_msg_id: clientId, state: 'sending' };
    const entry = { msg: full, el: this.render(full) };
    entry.el.dataset.clientId = clientId;
    this.pending.set(clientId, entry);
    this.list.append(entry.el);
    return entry;
  }

  /** The gateway stored message `clientId` as `id`. Returns the entry (or null). */
  ack(clientId, id) {
    const entry = this.pending.get(clientId);
    if (!entry) return this.byId.get(id) || null;
    this.pending.delete(clientId);
    const existing = this.byId.get(id);
    if (existing) {
      entry.el.remove();
      return existing;
    }
    entry.msg.id = id;
    entry.el.dataset.id = id;
    this.byId.set(id, entry);
    entry.el.remove();
    this.place(entry);
    return entry;
  }

  /** Messages of ours not yet stored, oldest first (to resend after a reconnect). */
  unacked() {
    return Array.from(this.pending.entries(), ([clientId, e]) => ({ clientId, msg: e.msg, el: e.el }));
  }

  /** Puts a stored message in id order, before any pending ones. */
  place(entry) {
    const stored = Array.from(this.list.children).filter((el) => el.dataset.id);
    const after = stored.find((el) => compareIds(el.dataset.id, entry.msg.id) > 0);
    if (after) {
      this.list.insertBefore(entry.el, after);
      return;
    }
    const firstPending = Array.from(this.list.children).find(
      (el) => el.dataset.clientId && !el.dataset.id,
    );
    if (firstPending) this.list.insertBefore(entry.el, firstPending);
    else this.list.append(entry.el);
  }

  /** Adds a line that is not a message (a notice, a note); it keeps its place at the end. */
  note(el) {
    this.list.append(el);
  }

  clear() {
    this.byId.clear();
    this.pending.clear();
    this.lastId = null;
    this.list.replaceChildren();
  }
}
