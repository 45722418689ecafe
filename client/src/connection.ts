// One WebSocket to the server: says hello, validates every message with the shared protocol
// module, and hands typed messages to listeners. Reconnects with a growing delay, because a
// server restart or a refused session (E_BUSY) should not need a page reload.
import { parseServerMessage, PROTOCOL_VERSION, WS_PATH, type ServerMessage, type WelcomeMessage } from '../../server/protocol.ts';

export type Listener = (msg: ServerMessage) => void;

export class Connection {
  welcome: WelcomeMessage | undefined;
  private ws: WebSocket | undefined;
  private listeners = new Set<Listener>();
  private statusListeners = new Set<(status: string, ok: boolean) => void>();
  private retryMs = 500;
  private onOpenHooks: (() => void)[] = [];

  constructor(private readonly client: string) {
    this.open();
  }

  get ready(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.welcome !== undefined;
  }

  /** Bytes queued by the browser, for the sender's own backpressure. */
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onStatus(listener: (status: string, ok: boolean) => void): void {
    this.statusListeners.add(listener);
  }

  /** Runs now if connected, and after every (re)connection (e.g. to re-subscribe). */
  whenReady(hook: () => void): void {
    this.onOpenHooks.push(hook);
    if (this.ready) hook();
  }

  send(data: string | Uint8Array): boolean {
    if (!this.ready) return false;
    this.ws!.send(data);
    return true;
  }

  /** Drops this session and opens a new one at once (a new model: a new session, a zero state). */
  reconnect(): void {
    this.retryMs = 0;
    this.ws?.close();
  }

  sendJson(msg: object): boolean {
    return this.send(JSON.stringify(msg));
  }

  private status(text: string, ok: boolean): void {
    for (const l of this.statusListeners) l(text, ok);
  }

  private open(): void {
    const url = new URL(WS_PATH, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', version: PROTOCOL_VERSION, client: this.client }));
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let msg: ServerMessage;
      try {
        msg = parseServerMessage(ev.data);
      } catch (err) {
        console.warn('framewise: ignoring a malformed server message', err);
        return;
      }
      if (msg.type === 'welcome') {
        this.welcome = msg;
        this.retryMs = 500;
        this.status(`connected · ${msg.model.embedderId}`, true);
        for (const h of this.onOpenHooks) h();
      }
      if (msg.type === 'error' && msg.code === 'E_BUSY') this.status(msg.message, false);
      for (const l of this.listeners) l(msg);
    };
    ws.onclose = () => {
      this.welcome = undefined;
      this.status(`disconnected; retrying in ${Math.round(this.retryMs / 1000)} s`, false);
      setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(10_000, Math.max(500, this.retryMs * 2));
    };
  }
}
