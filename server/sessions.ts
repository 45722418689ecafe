// WebSocket sessions: one per socket, each with its own stream in the live scheduler (so its own
// recurrent state and frame counter), its own outbox, and its own stats. Also the socket-level
// policies: the session cap (a refused socket gets an E_BUSY error, then close 1013), the
// ping/pong heartbeat (a peer that misses a pong is terminated), and protocol errors answered
// with an error message while the session keeps going.
import { randomUUID } from 'node:crypto';
import type WebSocket from 'ws';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import type { JobManager } from './jobs.ts';
import type { LiveScheduler, LiveStream } from '../pipeline/live-scheduler.ts';
import { Outbox } from './outbox.ts';
import { publicMessage } from './public-message.ts';
import {
  decodeFrame,
  labelMessage,
  parseClientControl,
  PROTOCOL_VERSION,
  ProtocolViolation,
  type ErrorMessage,
  type Limits,
  type ModelInfo,
  type ServerMessage,
} from './protocol.ts';

export interface SessionsConfig {
  scheduler: LiveScheduler;
  model: ModelInfo;
  limits: Limits;
  jobs: JobManager | undefined;
  maxSessions: number;
  heartbeatMs: number;
  /** A socket that has not said hello this long after connecting is closed (its slot freed). */
  helloTimeoutMs: number;
  coalesceBytes: number;
  /** How often each live session gets a stats message. */
  statsMs?: number;
  log: (line: string) => void;
}

/** Close codes (RFC 6455 and the registry): 1013 try again later, 1002 protocol error. */
const CLOSE_BUSY = 1013;
const CLOSE_PROTOCOL = 1002;
/** After a close frame, how long a peer may take to answer it before its socket is destroyed. */
const CLOSE_GRACE_MS = 1000;

export class Sessions {
  private readonly sessions = new Map<WebSocket, Session>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly config: SessionsConfig) {
    this.heartbeat = setInterval(() => {
      for (const s of this.sessions.values()) s.beat();
    }, config.heartbeatMs);
    this.heartbeat.unref();
  }

  get count(): number {
    return this.sessions.size;
  }

  /** Takes a freshly upgraded socket: refuses it past the cap, else starts a session. */
  accept(ws: WebSocket): void {
    ws.on('error', (err) => this.config.log(`ws error: ${err.message}`));
    if (this.sessions.size >= this.config.maxSessions) {
      const msg: ErrorMessage = {
        type: 'error',
        streamId: '',
        index: -1,
        timestampMs: 0,
        code: ErrorCodes.BUSY,
        message: `server busy: ${this.config.maxSessions} sessions is the limit (--max-sessions); try again later`,
      };
      ws.send(JSON.stringify(msg), () => ws.close(CLOSE_BUSY, 'server busy'));
      return;
    }
    const session = new Session(ws, this.config, () => this.sessions.size);
    this.sessions.set(ws, session);
    ws.on('close', () => {
      session.dispose();
      this.sessions.delete(ws);
    });
  }

  /** Sends a message to every greeted session (the Teach view's training progress). */
  broadcast(msg: ServerMessage): void {
    for (const s of this.sessions.values()) s.notify(msg);
  }

  /** Closes every socket (server shutdown). */
  closeAll(): void {
    clearInterval(this.heartbeat);
    for (const [ws, s] of this.sessions) {
      s.dispose();
      ws.terminate();
    }
    this.sessions.clear();
  }
}

class Session {
  readonly streamId = `live-${randomUUID().slice(0, 8)}`;
  private readonly outbox: Outbox;
  private stream: LiveStream | undefined;
  private greeted = false;
  private alive = true;
  /** Highest frame index received since the last reset (-1: none). */
  private lastIndex = -1;
  private lastTimestamp = 0;
  private received = 0;
  private processed = 0;
  private dropped = 0;
  private statsTimer: NodeJS.Timeout | undefined;
  private window = { at: performance.now(), processed: 0, dropped: 0 };
  private readonly jobSubs = new Map<string, () => void>();
  private disposed = false;
  private readonly helloDeadline: NodeJS.Timeout;

  constructor(
    private readonly ws: WebSocket,
    private readonly config: SessionsConfig,
    private readonly sessionCount: () => number,
  ) {
    this.outbox = new Outbox(ws, config.coalesceBytes);
    // A socket that never says hello would hold a session slot until the heartbeat or forever.
    this.helloDeadline = setTimeout(() => {
      this.sendError(new ProtocolViolation(`no hello within ${config.helloTimeoutMs} ms of connecting`));
      this.ws.close(CLOSE_PROTOCOL, 'no hello');
      setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
    }, config.helloTimeoutMs);
    this.helloDeadline.unref();
    ws.on('pong', () => (this.alive = true));
    ws.on('message', (data, isBinary) => {
      try {
        this.onMessage(data as Buffer | ArrayBuffer | Buffer[], isBinary);
      } catch (err) {
        // Nothing a client sends may take the server down: report and carry on.
        this.sendError(err);
      }
    });
  }

  beat(): void {
    if (!this.alive) {
      this.config.log(`${this.streamId}: no pong, terminating`);
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.helloDeadline);
    clearInterval(this.statsTimer);
    this.stream?.close();
    this.outbox.close();
    for (const unsub of this.jobSubs.values()) unsub();
    this.jobSubs.clear();
  }

  notify(msg: ServerMessage): void {
    if (this.greeted) this.send(msg);
  }

  private send(msg: ServerMessage): void {
    if (!this.disposed) this.outbox.send(msg);
  }

  private base(): { streamId: string; index: number; timestampMs: number } {
    return { streamId: this.streamId, index: this.lastIndex, timestampMs: this.lastTimestamp };
  }

  private sendError(err: unknown, index?: number): void {
    const e =
      err instanceof FramewiseError ? err : new FramewiseError(ErrorCodes.PROTOCOL, `could not handle the message: ${(err as Error)?.message ?? String(err)}`);
    const frameIndex = index ?? (e instanceof ProtocolViolation ? e.frameIndex : undefined);
    this.send({ type: 'error', ...this.base(), ...(frameIndex !== undefined ? { index: frameIndex } : {}), code: e.code, message: publicMessage(e.message) });
  }

  private onMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (!isBinary) {
      const msg = parseClientControl(buf.toString('utf8'));
      if (msg.type === 'hello') return this.onHello(msg.version);
      if (!this.greeted) throw new ProtocolViolation(`"${msg.type}" before hello: send {"type":"hello","version":${PROTOCOL_VERSION}} first`);
      if (msg.type === 'reset') return this.onReset();
      if (msg.type === 'subscribe') return this.onSubscribe(msg.jobId);
      this.jobSubs.get(msg.jobId)?.();
      this.jobSubs.delete(msg.jobId);
      return;
    }
    if (!this.greeted) throw new ProtocolViolation(`frame before hello: send {"type":"hello","version":${PROTOCOL_VERSION}} first`);
    const frame = decodeFrame(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), { size: this.config.model.inputSize });
    if (frame.index <= this.lastIndex) {
      throw new ProtocolViolation(
        `frame ${frame.index} is out of order: frame ${this.lastIndex} was already received (indices must increase; reset to start again)`,
        frame.index,
      );
    }
    if (frame.timestampMs < this.lastTimestamp) {
      throw new ProtocolViolation(
        `frame ${frame.index}: capture timestamp ${frame.timestampMs} is before the previous frame's ${this.lastTimestamp}`,
        frame.index,
      );
    }
    this.lastIndex = frame.index;
    this.lastTimestamp = frame.timestampMs;
    this.received += 1;
    this.liveStream().submit({
      index: frame.index,
      timestampMs: frame.timestampMs,
      format: frame.format,
      // Own copy: ws may reuse or pool the receive buffer.
      payload: frame.payload.slice(),
      receivedAt: performance.now(),
    });
  }

  private onHello(version: number): void {
    if (version !== PROTOCOL_VERSION) {
      this.sendError(new ProtocolViolation(`protocol version ${version} is not supported; this server speaks ${PROTOCOL_VERSION}`));
      this.ws.close(CLOSE_PROTOCOL, 'protocol version');
      return;
    }
    if (this.greeted) throw new ProtocolViolation('hello was already received on this session');
    this.greeted = true;
    clearTimeout(this.helloDeadline);
    this.send({ type: 'welcome', ...this.base(), version: PROTOCOL_VERSION, model: this.config.model, limits: this.config.limits });
  }

  private onReset(): void {
    this.stream?.reset();
    this.lastIndex = -1;
    this.lastTimestamp = 0;
    this.send({ type: 'reset', ...this.base() });
  }

  private onSubscribe(jobId: string): void {
    const jobs = this.config.jobs;
    if (!jobs) throw new FramewiseError(ErrorCodes.USAGE, 'this server has no file jobs');
    if (this.jobSubs.has(jobId)) return;
    const unsub = jobs.subscribe(jobId, {
      job: (msg) => this.send(msg),
      label: (msg) => this.send(msg),
    });
    this.jobSubs.set(jobId, unsub);
  }

  /** The scheduler stream and the stats timer start with the first frame. */
  private liveStream(): LiveStream {
    if (this.stream) return this.stream;
    this.stream = this.config.scheduler.open(this.streamId, {
      onLabel: (l) => {
        this.processed += 1;
        this.send(labelMessage(l, l.serverMs));
      },
      onDropped: (frames, reason) => {
        this.dropped += frames.length;
        const last = frames[frames.length - 1]!;
        this.send({ type: 'dropped', streamId: this.streamId, index: last, timestampMs: this.lastTimestamp, frames, count: frames.length, reason });
      },
      onError: (err, index) => this.sendError(err, index),
    });
    const statsMs = this.config.statsMs ?? 1000;
    this.window = { at: performance.now(), processed: 0, dropped: 0 };
    this.statsTimer = setInterval(() => this.sendStats(), statsMs);
    this.statsTimer.unref();
    return this.stream;
  }

  private sendStats(): void {
    const now = performance.now();
    const dt = Math.max(1e-3, (now - this.window.at) / 1000);
    const processedFps = (this.processed - this.window.processed) / dt;
    const droppedFps = (this.dropped - this.window.dropped) / dt;
    this.window = { at: now, processed: this.processed, dropped: this.dropped };
    this.send({
      type: 'stats',
      ...this.base(),
      received: this.received,
      processed: this.processed,
      dropped: this.dropped,
      coalesced: this.outbox.coalesced,
      processedFps: Math.round(processedFps * 10) / 10,
      droppedFps: Math.round(droppedFps * 10) / 10,
      rssBytes: process.memoryUsage.rss(),
      sessions: this.sessionCount(),
    });
  }
}
