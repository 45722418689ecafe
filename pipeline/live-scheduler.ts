// The live inference loop shared by all sessions: one embedder and one recurrent head, many
// streams. Each stream first resamples its frames to the bundle's rate by their timestamps
// (fps-resampler.ts: the frames ffmpeg's fps filter would pick offline; the others are reported
// dropped as 'resampled'). Rate policy "latest-wins": each stream holds at most ONE pending
// frame; a newer frame replaces it and the replaced one is reported as dropped ('superseded'), so
// queueing delay is bounded by one round whatever the senders do. Fairness: each round takes the
// pending frames of up to `maxBatch` streams, in round-robin order starting after the last stream
// served, embeds them in ONE embedder call and steps them in ONE head.stepBatch call (each
// stream with its own state). Frames arriving during a round wait for the next one.
import type { Embedder } from '../models/embedder.ts';
import { MotionStream, repeatedFrame, withMotion, type FeatureSet } from '../models/motion.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import type { RecurrentState } from '../models/recurrent/state.ts';
import { asFramewiseError, ErrorCodes, type FramewiseError } from '../core/errors.ts';
import type { FrameLabel } from '../core/types.ts';
import { framePixels } from './frame-pixels.ts';
import { FpsResampler } from './fps-resampler.ts';
import { labelStreams } from './label-stage.ts';
import { NEVER_UNKNOWN, type UnknownRule } from '../models/unknown-rule.ts';
import type { DropReason, FrameFormat } from '../core/live-frame.ts';

export interface PendingFrame {
  index: number;
  /** Capture time from the client (its clock), echoed in the label. */
  timestampMs: number;
  format: FrameFormat;
  /** Owned copy of the payload (the socket's buffer is not kept). */
  payload: Uint8Array;
  /** performance.now() at receipt, for serverMs. */
  receivedAt: number;
}

export interface LiveResult extends FrameLabel {
  /** Receipt to result, ms. */
  serverMs: number;
}

export interface StreamCallbacks {
  onLabel(result: LiveResult): void;
  onDropped(frames: number[], reason: DropReason): void;
  onError(err: FramewiseError, frameIndex: number): void;
}

export interface LiveStream {
  readonly id: string;
  /** Queues a frame (latest-wins). */
  submit(frame: PendingFrame): void;
  /** Zero state; the pending frame (and a frame in the current round) is dropped with reason 'reset'. */
  reset(): void;
  /** Leaves the scheduler; results of a round in progress are discarded. */
  close(): void;
}

export interface SchedulerStats {
  rounds: number;
  framesEmbedded: number;
  /** Largest number of streams served in one round. */
  maxBatch: number;
}

/** A frame waiting for a round, after `gap` ticks the previous frame fills again. */
interface Pending {
  frame: PendingFrame;
  gap: number;
}

class Stream implements LiveStream {
  state: RecurrentState;
  pending: Pending | null = null;
  /** The embedding the head saw last: it fills the ticks of a gap. */
  lastEmbedding: Float32Array | undefined;
  /** The stream's motion features, when the head takes them (models/motion.ts). */
  readonly motion: MotionStream | undefined;
  private readonly resampler: FpsResampler<PendingFrame>;
  private holdTimer: NodeJS.Timeout | undefined;
  /** Bumped by reset(): a round that started before it must not write its state back. */
  epoch = 0;
  closed = false;

  constructor(
    readonly id: string,
    private readonly scheduler: LiveScheduler,
    readonly cb: StreamCallbacks,
  ) {
    this.state = scheduler.head.zeroState();
    this.resampler = new FpsResampler(scheduler.fps);
    this.motion = scheduler.features === 'appearance+motion' ? new MotionStream() : undefined;
  }

  submit(frame: PendingFrame): void {
    if (this.closed) return;
    clearTimeout(this.holdTimer);
    const { ready, skipped } = this.resampler.push(frame);
    if (skipped) this.cb.onDropped([skipped.index], 'resampled');
    if (ready) this.enqueue(ready);
    // The held frame is decided by the next frame, or once its tick is over (plus a grace for
    // frames in transit), so a stream that pauses still gets its last frame labeled.
    const wait = this.resampler.msUntilDecided();
    if (wait !== undefined) {
      this.holdTimer = setTimeout(() => {
        const held = this.resampler.flush();
        if (held && !this.closed) this.enqueue(held);
      }, wait + this.scheduler.holdGraceMs);
      this.holdTimer.unref();
    }
  }

  /** Latest-wins: a newer frame replaces the pending one, whose ticks it then fills too. */
  private enqueue(next: Pending): void {
    const replaced = this.pending;
    this.pending = replaced ? { frame: next.frame, gap: next.gap + replaced.gap + 1 } : next;
    if (replaced) this.cb.onDropped([replaced.frame.index], 'superseded');
    this.scheduler.kick();
  }

  reset(): void {
    this.epoch += 1;
    this.state = this.scheduler.head.zeroState();
    this.lastEmbedding = undefined;
    this.motion?.reset();
    clearTimeout(this.holdTimer);
    const dropped = [this.pending?.frame, this.resampler.reset()].filter((f): f is PendingFrame => f !== undefined);
    this.pending = null;
    if (dropped.length > 0)
      this.cb.onDropped(
        dropped.map((f) => f.index),
        'reset',
      );
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.holdTimer);
    this.pending = null;
    this.scheduler.remove(this);
  }
}

export interface LiveSchedulerOptions {
  embedder: Embedder;
  head: RecurrentHead;
  /** The bundle's class names, in the head's output order. */
  classes: readonly string[];
  /** The bundle's frames per second; null when it runs at the source's rate. */
  fps: number | null;
  /** What the head takes per frame (the bundle's); default the embedding alone. */
  features?: FeatureSet;
  /** Most streams served in one round. */
  maxBatch: number;
  /** Grace past a held frame's tick before it is decided without a next frame; default one tick. */
  holdGraceMs?: number;
  /** When a frame is labeled `unknown` (the bundle's rule, models/unknown-rule.ts); default: never. */
  unknown?: UnknownRule;
}

export class LiveScheduler {
  readonly stats: SchedulerStats = { rounds: 0, framesEmbedded: 0, maxBatch: 0 };
  private readonly streams: Stream[] = [];
  /** Index in `streams` where the next round starts looking. */
  private cursor = 0;
  private running = false;
  private idleWaiters: (() => void)[] = [];

  readonly embedder: Embedder;
  readonly head: RecurrentHead;
  /** Frames per second the head runs at (the bundle's); null: the source's own rate. */
  readonly fps: number | null;
  readonly features: FeatureSet;
  /** Wait past the end of a held frame's tick before deciding it without a next frame. */
  readonly holdGraceMs: number;
  private readonly classes: readonly string[];
  private readonly maxBatch: number;
  private readonly unknown: UnknownRule;

  constructor(o: LiveSchedulerOptions) {
    this.embedder = o.embedder;
    this.head = o.head;
    this.fps = o.fps;
    this.features = o.features ?? 'appearance';
    this.holdGraceMs = o.holdGraceMs ?? (o.fps ? 1000 / o.fps : 0);
    this.classes = o.classes;
    this.maxBatch = o.maxBatch;
    this.unknown = o.unknown ?? NEVER_UNKNOWN;
  }

  open(id: string, cb: StreamCallbacks): LiveStream {
    const s = new Stream(id, this, cb);
    this.streams.push(s);
    return s;
  }

  get size(): number {
    return this.streams.length;
  }

  /** Resolves when no round is running (for shutdown and tests). */
  idle(): Promise<void> {
    return this.running ? new Promise((r) => this.idleWaiters.push(r)) : Promise.resolve();
  }

  /** @internal */
  remove(s: Stream): void {
    const i = this.streams.indexOf(s);
    if (i < 0) return;
    this.streams.splice(i, 1);
    if (i < this.cursor) this.cursor -= 1;
    if (this.cursor >= this.streams.length) this.cursor = 0;
  }

  /** @internal Starts the loop if it is not running. */
  kick(): void {
    if (this.running) return;
    this.running = true;
    // Later in this tick, so a burst of submits from one socket read coalesces into one round.
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        const picked = this.pick();
        if (picked.length === 0) break;
        await this.round(picked);
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Round-robin: up to maxBatch streams with a pending frame, starting at the cursor. */
  private pick(): { stream: Stream; frame: PendingFrame; gap: number; epoch: number }[] {
    const n = this.streams.length;
    const out: { stream: Stream; frame: PendingFrame; gap: number; epoch: number }[] = [];
    let last = -1;
    for (let k = 0; k < n && out.length < this.maxBatch; k++) {
      const i = (this.cursor + k) % n;
      const s = this.streams[i]!;
      if (!s.pending) continue;
      out.push({ stream: s, frame: s.pending.frame, gap: s.pending.gap, epoch: s.epoch });
      s.pending = null;
      last = i;
    }
    if (last >= 0) this.cursor = (last + 1) % n;
    return out;
  }

  private async round(picked: { stream: Stream; frame: PendingFrame; gap: number; epoch: number }[]): Promise<void> {
    const size = this.embedder.inputSize;
    const ok: { stream: Stream; frame: PendingFrame; gap: number; epoch: number; rgb: Uint8Array }[] = [];
    for (const p of picked) {
      try {
        ok.push({ ...p, rgb: framePixels(p.frame.format, p.frame.payload, size, p.frame.index) });
      } catch (err) {
        p.stream.cb.onDropped([p.frame.index], 'invalid');
        p.stream.cb.onError(asFramewiseError(err, ErrorCodes.PROTOCOL, 'frame'), p.frame.index);
      }
    }
    if (ok.length === 0) return;
    // Before the embedder takes the pixels (a worker pool transfers them).
    const motion = ok.map((p) => p.stream.motion?.next({ rgb: p.rgb, width: size, height: size }));
    this.stats.rounds += 1;
    this.stats.maxBatch = Math.max(this.stats.maxBatch, ok.length);
    let embeddings: Float32Array[];
    try {
      embeddings = await this.embedder.embed(ok.map((p) => ({ rgb: p.rgb, width: size, height: size })));
      this.stats.framesEmbedded += ok.length;
    } catch (err) {
      const e = asFramewiseError(err, ErrorCodes.MODEL_INVALID, 'embedding failed');
      for (const p of ok) p.stream.cb.onError(e, p.frame.index);
      return;
    }
    // A stream reset or closed while the embedder ran keeps its new state; its frame is dropped.
    const live = ok.filter((p, i) => {
      if (p.stream.closed) return false;
      if (p.stream.epoch !== p.epoch) {
        p.stream.cb.onDropped([p.frame.index], 'reset');
        return false;
      }
      (p as { emb?: Float32Array }).emb = motion[i] ? withMotion(embeddings[i]!, motion[i]!) : embeddings[i];
      return true;
    }) as ((typeof ok)[number] & { emb: Float32Array })[];
    if (live.length === 0) return;
    let result;
    try {
      result = labelStreams(
        this.head,
        this.classes,
        live.map((p) => ({
          state: p.stream.state,
          frame: { streamId: p.stream.id, index: p.frame.index, timestampMs: p.frame.timestampMs, embedding: p.emb },
          ...(p.gap > 0 && p.stream.lastEmbedding ? { gap: { embedding: p.stream.lastEmbedding, steps: p.gap } } : {}),
        })),
        this.unknown,
      );
    } catch (err) {
      const e = asFramewiseError(err, ErrorCodes.MODEL_INVALID, 'recurrent head failed');
      for (const p of live) p.stream.cb.onError(e, p.frame.index);
      return;
    }
    const now = performance.now();
    live.forEach((p, b) => {
      p.stream.state = result.states[b]!;
      p.stream.lastEmbedding = p.stream.motion ? repeatedFrame(p.emb) : p.emb;
      p.stream.cb.onLabel({ ...result.labels[b]!, serverMs: now - p.frame.receivedAt });
    });
  }
}
