// Outgoing messages of one socket. ws.send() never applies backpressure: a client that reads
// slowly makes the server buffer without bound. So when the socket's bufferedAmount is above a
// threshold, messages wait here and are coalesced: a newer label (or stats, or job status) of a
// stream replaces the waiting one, dropped reports of a stream merge into one per reason. Only the latest
// state of each stream is worth sending late; memory per socket stays bounded.
import type WebSocket from 'ws';
import type { DroppedMessage, ServerMessage } from './protocol.ts';

/** Indices listed in one merged dropped message (the count keeps the rest). */
const MAX_LISTED = 256;
/** Queued messages of kinds that are never merged (welcome, reset, error) kept at most. */
const MAX_OTHER = 64;
const FLUSH_POLL_MS = 20;

export class Outbox {
  /** Messages merged away because the client was slow. */
  coalesced = 0;
  private queue: ServerMessage[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly highWaterBytes: number,
  ) {}

  send(msg: ServerMessage): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.queue.length === 0 && this.ws.bufferedAmount <= this.highWaterBytes) {
      this.ws.send(JSON.stringify(msg));
      return;
    }
    this.enqueue(msg);
    this.schedule();
  }

  /** Stops the flush timer (the socket is closing). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }

  get queued(): number {
    return this.queue.length;
  }

  private enqueue(msg: ServerMessage): void {
    const q = this.queue;
    const sameKind = (m: ServerMessage) =>
      m.type === msg.type && m.streamId === msg.streamId && (m.type !== 'job' || msg.type !== 'job' || m.job.id === msg.job.id);
    if (msg.type === 'label' || msg.type === 'stats' || msg.type === 'job') {
      const i = q.findIndex(sameKind);
      if (i >= 0) {
        q.splice(i, 1);
        this.coalesced += 1;
      }
      q.push(msg);
      return;
    }
    if (msg.type === 'dropped') {
      // One waiting report per (stream, reason): drops of mixed reasons must merge too, or a
      // client that never reads makes the queue grow by one message per drop.
      const prev = q.find((m) => sameKind(m) && (m as DroppedMessage).reason === msg.reason) as DroppedMessage | undefined;
      if (prev) {
        prev.frames = [...prev.frames, ...msg.frames].slice(-MAX_LISTED);
        prev.count += msg.count;
        prev.index = msg.index;
        prev.timestampMs = msg.timestampMs;
        this.coalesced += 1;
        return;
      }
      q.push({ ...msg, frames: [...msg.frames] });
      return;
    }
    const others = q.filter((m) => m.type !== 'label' && m.type !== 'stats' && m.type !== 'job' && m.type !== 'dropped');
    if (others.length >= MAX_OTHER) {
      this.coalesced += 1;
      return;
    }
    q.push(msg);
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, FLUSH_POLL_MS);
  }

  private flush(): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      this.queue = [];
      return;
    }
    while (this.queue.length > 0 && this.ws.bufferedAmount <= this.highWaterBytes) {
      this.ws.send(JSON.stringify(this.queue.shift()));
    }
    if (this.queue.length > 0) this.schedule();
  }
}
