// A small Node client of the live protocol, for the tests, the benchmark and users' scripts:
// connects, says hello, validates every server message, and lets the caller await messages.
import WebSocket from 'ws';
import { encodeFrame, parseServerMessage, PROTOCOL_VERSION, WS_PATH, type FrameHeader, type ServerMessage, type WelcomeMessage } from './protocol.ts';

export interface LiveClient {
  readonly ws: WebSocket;
  readonly welcome: WelcomeMessage;
  /** Every message received so far, in order (the caller may clear it). */
  readonly messages: ServerMessage[];
  sendFrame(header: Omit<FrameHeader, 'width' | 'height' | 'format'> & Partial<FrameHeader>, payload: Uint8Array): void;
  sendJson(msg: unknown): void;
  /** The next message (after those already taken) matching `pred`; rejects after timeoutMs. */
  next<T extends ServerMessage = ServerMessage>(pred?: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<T>;
  onMessage(listener: (m: ServerMessage) => void): void;
  /** Resolves with the close code. */
  closed: Promise<number>;
  close(): Promise<number>;
}

/**
 * Opens a socket without the hello (for tests of what happens before it). A `?token=` on
 * `baseUrl` (the URL `framewise serve` prints) is sent as a bearer token.
 */
export function openSocket(baseUrl: string, options: WebSocket.ClientOptions = {}): WebSocket {
  const url = new URL(WS_PATH, baseUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = new URL(baseUrl).searchParams.get('token');
  const headers = { ...(token !== null ? { Authorization: `Bearer ${token}` } : {}), ...options.headers };
  return new WebSocket(url, { perMessageDeflate: false, ...options, headers });
}

export async function connectLive(baseUrl: string, client = 'node'): Promise<LiveClient> {
  const ws = openSocket(baseUrl);
  const messages: ServerMessage[] = [];
  const listeners: ((m: ServerMessage) => void)[] = [];
  let taken = 0;
  const waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const m = parseServerMessage(String(data));
    messages.push(m);
    for (const l of listeners) l(m);
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i]!.pred(m)) {
        waiters.splice(i, 1)[0]!.resolve(m);
        taken = messages.length;
        return;
      }
    }
  });
  await new Promise<void>((ok, fail) => {
    ws.once('open', () => ok());
    ws.once('error', fail);
  });
  const next = <T extends ServerMessage>(pred: (m: ServerMessage) => boolean = () => true, timeoutMs = 10_000): Promise<T> => {
    for (let i = taken; i < messages.length; i++) {
      if (pred(messages[i]!)) {
        taken = i + 1;
        return Promise.resolve(messages[i] as T);
      }
    }
    taken = messages.length;
    return new Promise<T>((resolve, reject) => {
      const w = { pred, resolve: resolve as (m: ServerMessage) => void };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) {
          waiters.splice(i, 1);
          reject(new Error(`no matching message within ${timeoutMs} ms`));
        }
      }, timeoutMs).unref();
    });
  };
  ws.send(JSON.stringify({ type: 'hello', version: PROTOCOL_VERSION, client }));
  const first = await next((m) => m.type === 'welcome' || m.type === 'error');
  if (first.type !== 'welcome') throw new Error(`server refused the session: ${first.type === 'error' ? `${first.code} ${first.message}` : first.type}`);
  const welcome = first;
  const size = welcome.model.inputSize;
  return {
    ws,
    welcome,
    messages,
    sendFrame: (h, payload) => ws.send(encodeFrame({ format: 'rgb24', width: size, height: size, ...h }, payload)),
    sendJson: (msg) => ws.send(JSON.stringify(msg)),
    next,
    onMessage: (l) => listeners.push(l),
    closed,
    close: () => {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
      return closed;
    },
  };
}
