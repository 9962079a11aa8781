// A WebSocket that comes back: after a drop it reconnects with growing, jittered delays (0.5 s up
// to 15 s), at once when the browser says it is online again, and tells the page what it is doing
// so the page can say so. Frames are JSON objects. It never reconnects after stop().

const DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class Link {
  /**
   * @param {string} path  e.g. '/ws/chat'
   * @param {object} hooks onOpen(), onFrame(frame), onState(state, detail), onClose(code)
   *   state: 'connecting' | 'open' | 'retrying' (detail: seconds) | 'offline' | 'stopped'
   */
  constructor(path, hooks) {
    this.url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
    this.hooks = hooks;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.onOnline = () => this.connectNow();
    this.onOffline = () => this.drop('offline');
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  connect() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (navigator.onLine === false) {
      this.state('offline');
      return;
    }
    this.state('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.state('open');
      this.hooks.onOpen?.();
    });
    ws.addEventListener('message', (event) => {
      if (this.ws !== ws || typeof event.data !== 'string') return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === 'string') this.hooks.onFrame?.(frame);
    });
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.hooks.onClose?.(event.code);
      if (!this.stopped) this.retry();
    });
  }

  /** Reconnects now (the network came back), forgetting the backoff. */
  connectNow() {
    if (this.stopped || this.open) return;
    this.attempt = 0;
    if (this.ws) return;
    this.connect();
  }

  /** Closes the current socket (it will be reopened unless stopped). */
  drop(state) {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        /* already closing */
      }
    }
    clearTimeout(this.timer);
    this.timer = null;
    if (this.stopped) return;
    if (state === 'offline') this.state('offline');
    else this.retry();
  }

  retry() {
    if (this.stopped || this.timer) return;
    if (navigator.onLine === false) {
      this.state('offline');
      return;
    }
    const base = DELAYS_MS[Math.min(this.attempt, DELAYS_MS.length - 1)];
    const delay = Math.round(base * (0.7 + Math.random() * 0.6));
    this.attempt += 1;
    this.state('retrying', Math.ceil(delay / 1000));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  /** Sends a frame; false when the socket is not open (the caller keeps it for later). */
  send(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Closes for good. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        /* already closing */
      }
    }
    this.state('stopped');
  }

  state(name, detail) {
    this.hooks.onState?.(name, detail);
  }
}
