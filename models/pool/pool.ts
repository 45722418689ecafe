// The embedding worker pool: N worker threads, each with its own embedder instance (tfjs wasm
// runs one thread per instance in Node, so this is how it uses the other cores), behind the
// ordinary Embedder interface.
//
// Contract
// - embed(frames) splits the frames into tasks of at most ceil(n / workers) (and at most
//   `batchSize`) frames, runs them on whichever workers are free and resolves with the
//   embeddings in frame order. Concurrent calls are served round-robin, one task per call in
//   turn, so a long offline call cannot starve a short live one.
// - Pixels are transferred, not copied: after embed() returns (or throws) a frame whose rgb owns
//   its whole ArrayBuffer is detached (length 0). A frame that is a view into a bigger buffer,
//   or one whose buffer appears twice in a call, is copied (transferring it would detach
//   someone else's data). With `transfer: false` every frame is copied and left intact.
// - Errors: a task the worker's embedder rejects rejects its call with that error (its code kept,
//   the worker's stack as cause); the call's other tasks are dropped. A worker that dies (crash,
//   process.exit, terminate() by someone else) is replaced. Its in-flight task is retried once
//   on another worker when the pool still holds the pixels (`transfer: false`); transferred
//   pixels died with the worker, so that task fails with E_WORKER_FAILED naming the frames.
// - close()/dispose() terminates every worker; pending calls reject with E_CANCELLED. No thread
//   survives close(): `stats().live` counts threads whose 'exit' has not been seen yet.
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError, integerIn } from '../../core/errors.ts';
import type { Embedder, RgbImage } from '../embedder.ts';
import { deserializeError, type EmbedderFactory, type FromWorker, type ReadyInfo, type ToWorker, type WorkerInit } from './messages.ts';

export interface PoolOptions {
  /** Worker threads, an integer in [1, 64]. */
  size: number;
  /** What each worker loads (its own instance). */
  factory: EmbedderFactory;
  /** Most frames per worker task, an integer in [1, 1024]. Default DEFAULTS.embedBatch. */
  batchSize?: number;
  /** Transfer pixel buffers to workers (zero copy, detaches the caller's frames). Default true. */
  transfer?: boolean;
  /** Worker start failures in a row after which a dead worker is no longer replaced. Default 3. */
  maxRestarts?: number;
  /** Progress lines of the first worker (loading), and one line per replaced worker. */
  log?: (line: string) => void;
}

export interface PoolStats {
  /** Threads wanted. */
  size: number;
  /** Threads started and not yet exited (includes ones still loading). */
  live: number;
  /** Threads loaded and able to take tasks. */
  ready: number;
  /** Threads running a task now. */
  busy: number;
  /** Tasks waiting for a free thread, over all calls. */
  queued: number;
  spawned: number;
  /** Threads that died unexpectedly and were (or are being) replaced. */
  crashed: number;
  tasks: number;
  retried: number;
  /** Frames whose pixels were transferred / copied to a worker. */
  transferred: number;
  copied: number;
}

export interface EmbeddingPool extends Embedder {
  readonly size: number;
  readonly macsPerFrame: number | undefined;
  stats(): PoolStats;
  /** The current worker threads (for tests that kill one). */
  threads(): readonly Worker[];
  /** Terminates all workers; resolves once every thread has exited. Idempotent. */
  close(): Promise<void>;
}

const BOOT = new URL('./worker-boot.mjs', import.meta.url);
// From the sources this module is .ts (run through tsx); from the built package it is .js.
const ENTRY = new URL(`./embed-worker${extname(import.meta.url)}`, import.meta.url).href;
/** How long close() waits for a worker to finish its task in hand before terminating it. */
const CLOSE_GRACE_MS = 10_000;

interface Call {
  readonly out: (Float32Array | undefined)[];
  readonly queue: Task[];
  remaining: number;
  settled: boolean;
  resolve(v: Float32Array[]): void;
  reject(e: unknown): void;
  /** For classify calls. */
  classes?: (top: { className: string; probability: number }[]) => void;
}

interface Task {
  readonly call: Call;
  readonly start: number;
  readonly frames: RgbImage[];
  readonly kind: 'embed' | 'classify';
  readonly topK?: number;
  attempts: number;
  /** True once its pixels left this thread for good (transferred). */
  gone: boolean;
}

interface Slot {
  readonly worker: Worker;
  readonly n: number;
  state: 'loading' | 'ready' | 'busy' | 'dead';
  task?: Task;
  taskId?: number;
  lastError?: unknown;
}

function usage(msg: string): FramewiseError {
  return new FramewiseError(ErrorCodes.USAGE, msg);
}

/** Starts the workers and resolves once all of them have loaded their embedder. */
export async function createEmbeddingPool(options: PoolOptions): Promise<EmbeddingPool> {
  const size = integerIn('workers', options.size, 1, 64);
  const batchSize = integerIn('batchSize', options.batchSize ?? DEFAULTS.embedBatch, 1, 1024);
  const pool = new Pool(size, batchSize, options);
  await pool.start();
  return pool;
}

class Pool implements EmbeddingPool {
  id = '';
  dim = 0;
  inputSize = 0;
  macsPerFrame: number | undefined;
  private readonly slots: Slot[] = [];
  private readonly calls: Call[] = [];
  /** Index in `calls` of the call that got the last task (round-robin). */
  private lastServed = -1;
  private nextTaskId = 1;
  private nextWorker = 0;
  private restartsInRow = 0;
  private started = false;
  private closing: Promise<void> | undefined;
  private broken: FramewiseError | undefined;
  private readonly exits = new Set<Promise<void>>();
  private readonly counters = { spawned: 0, crashed: 0, tasks: 0, retried: 0, transferred: 0, copied: 0 };
  private readonly log: (line: string) => void;
  private readonly transfer: boolean;

  constructor(
    readonly size: number,
    private readonly batchSize: number,
    private readonly options: PoolOptions,
  ) {
    this.log = options.log ?? (() => {});
    this.transfer = options.transfer ?? true;
  }

  async start(): Promise<void> {
    try {
      const infos = await Promise.all(Array.from({ length: this.size }, () => this.spawn()));
      const info = infos[0]!;
      this.id = info.id;
      this.dim = info.dim;
      this.inputSize = info.inputSize;
      this.macsPerFrame = info.macsPerFrame;
      this.started = true;
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  stats(): PoolStats {
    const count = (s: Slot['state']) => this.slots.filter((x) => x.state === s).length;
    return {
      size: this.size,
      live: this.exits.size,
      ready: count('ready') + count('busy'),
      busy: count('busy'),
      queued: this.calls.reduce((n, c) => n + c.queue.length, 0),
      ...this.counters,
    };
  }

  threads(): readonly Worker[] {
    return this.slots.filter((s) => s.state !== 'dead').map((s) => s.worker);
  }

  /** Rejects (never throws) on bad input, like the async embedders it stands in for. */
  embed(frames: readonly RgbImage[]): Promise<Float32Array[]> {
    let own: RgbImage[];
    try {
      this.live();
      if (!Array.isArray(frames)) throw usage('embed() takes an array of frames');
      frames.forEach((f, i) => this.check(f, i));
      own = this.ownFrames(frames);
    } catch (err) {
      return Promise.reject(err);
    }
    if (own.length === 0) return Promise.resolve([]);
    return new Promise<Float32Array[]>((resolve, reject) => {
      const call: Call = { out: new Array(own.length), queue: [], remaining: 0, settled: false, resolve, reject };
      const per = Math.min(this.batchSize, Math.ceil(own.length / this.size));
      for (let start = 0; start < own.length; start += per) {
        call.queue.push({ call, start, frames: own.slice(start, start + per), kind: 'embed', attempts: 0, gone: false });
      }
      call.remaining = call.queue.length;
      this.calls.push(call);
      this.dispatch();
    });
  }

  classify(frame: RgbImage, topK = 3): Promise<{ className: string; probability: number }[]> {
    let own: RgbImage;
    try {
      this.live();
      this.check(frame, 0);
      integerIn('topK', topK, 1, 1000);
      own = this.ownFrames([frame])[0]!;
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const call: Call = { out: [], queue: [], remaining: 1, settled: false, resolve: () => {}, reject, classes: resolve };
      call.queue.push({ call, start: 0, frames: [own], kind: 'classify', topK, attempts: 0, gone: false });
      this.calls.push(call);
      this.dispatch();
    });
  }

  dispose(): void {
    void this.close();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const cancelled = new FramewiseError(ErrorCodes.CANCELLED, `embedding pool (${this.id || 'loading'}) was closed`);
      for (const c of [...this.calls]) this.fail(c, cancelled);
      // Ask each worker to end after its task in hand (terminating a thread inside a native
      // engine's run() aborts the process); terminate() only those that do not end in time.
      for (const s of this.slots) {
        s.state = 'dead';
        s.worker.postMessage({ type: 'close' } satisfies ToWorker);
      }
      const ended = Promise.all([...this.exits]);
      const timer = setTimeout(() => {
        for (const s of this.slots) void s.worker.terminate();
      }, CLOSE_GRACE_MS);
      await ended;
      clearTimeout(timer);
    })();
    return this.closing;
  }

  // ---- workers ----

  /** Starts one worker; resolves with what it loaded, rejects if it cannot load. */
  private spawn(): Promise<ReadyInfo> {
    const n = this.nextWorker++;
    const init: WorkerInit = { entry: ENTRY, factory: this.options.factory };
    // execArgv [] : the worker must not inherit loader flags of the parent (vitest, tsx CLI); it registers tsx itself.
    const worker = new Worker(BOOT, { workerData: init, execArgv: [], stdout: false, stderr: false });
    const slot: Slot = { worker, n, state: 'loading' };
    this.slots.push(slot);
    this.counters.spawned += 1;
    let resolveExit!: () => void;
    const exited = new Promise<void>((r) => (resolveExit = r));
    this.exits.add(exited);
    return new Promise<ReadyInfo>((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready':
            slot.state = slot.state === 'dead' ? 'dead' : 'ready';
            this.restartsInRow = 0;
            resolve(m.info);
            this.dispatch();
            return;
          case 'load-failed':
            slot.lastError = deserializeError(m.error, ErrorCodes.MODEL_INVALID, `embedding worker ${n} could not load its embedder`);
            reject(slot.lastError);
            void worker.terminate();
            return;
          case 'log':
            if (n === 0) this.log(m.line);
            return;
          case 'done':
          case 'failed':
            this.finished(slot, m);
            return;
        }
      });
      worker.on('error', (err) => {
        // An uncaught exception in the worker; 'exit' follows and does the bookkeeping.
        slot.lastError = err;
      });
      worker.on('exit', (code) => {
        this.exits.delete(exited);
        resolveExit();
        const wasLoading = slot.state === 'loading';
        const intentional = this.closing !== undefined || slot.state === 'dead';
        slot.state = 'dead';
        const at = this.slots.indexOf(slot);
        if (at >= 0) this.slots.splice(at, 1);
        if (wasLoading) {
          reject(
            slot.lastError instanceof FramewiseError
              ? slot.lastError
              : new FramewiseError(ErrorCodes.WORKER_FAILED, `embedding worker ${n} exited (code ${code}) while loading${reason(slot.lastError)}`, {
                  cause: slot.lastError,
                }),
          );
        }
        // Before start() succeeded a failure fails start() itself; nothing is replaced.
        if (!intentional && this.started) this.crashed(slot, code);
      });
    });
  }

  /** A worker died on its own: account for its task, then replace it. */
  private crashed(slot: Slot, code: number): void {
    this.counters.crashed += 1;
    const task = slot.task;
    slot.task = undefined;
    const why = `embedding worker ${slot.n} died (exit code ${code})${reason(slot.lastError)}`;
    if (task && !task.call.settled) {
      if (!task.gone && task.attempts < 2) {
        this.counters.retried += 1;
        task.call.queue.unshift(task);
        this.log(`${why}; retrying its ${task.frames.length} frame(s) on another worker`);
      } else {
        const frames = `frames ${task.start}..${task.start + task.frames.length - 1} of the call`;
        this.fail(
          task.call,
          new FramewiseError(
            ErrorCodes.WORKER_FAILED,
            task.gone
              ? `${why} while embedding ${frames}; their pixels had been transferred to it, so they cannot be retried (the worker was replaced)`
              : `${why} while embedding ${frames}, for the second time`,
            { cause: slot.lastError },
          ),
        );
      }
    } else {
      this.log(`${why}; replacing it`);
    }
    const maxRestarts = this.options.maxRestarts ?? 3;
    if (this.restartsInRow >= maxRestarts) {
      this.broken = new FramewiseError(ErrorCodes.WORKER_FAILED, `${why}; ${maxRestarts} replacements in a row failed to start, giving up`, {
        cause: slot.lastError,
      });
      this.failAllIfNoWorkers();
      return;
    }
    this.restartsInRow += 1;
    this.spawn().catch((err: unknown) => {
      // A replacement that cannot load counts as another crash (its exit handler replaces it in turn).
      if (!this.closing) this.log(`replacement embedding worker failed to load: ${(err as Error).message}`);
    });
    this.dispatch();
  }

  private failAllIfNoWorkers(): void {
    if (this.slots.some((s) => s.state !== 'dead') || !this.broken) return;
    for (const c of [...this.calls]) this.fail(c, this.broken);
  }

  // ---- scheduling ----

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.state !== 'ready') continue;
      const task = this.nextTask();
      if (!task) return;
      this.send(slot, task);
    }
  }

  /** Round-robin over calls with queued tasks, starting after the call served last. */
  private nextTask(): Task | undefined {
    const n = this.calls.length;
    for (let k = 1; k <= n; k++) {
      const i = (this.lastServed + k) % n;
      const task = this.calls[i]!.queue.shift();
      if (task) {
        this.lastServed = i;
        return task;
      }
    }
    return undefined;
  }

  private send(slot: Slot, task: Task): void {
    const taskId = this.nextTaskId++;
    slot.state = 'busy';
    slot.task = task;
    slot.taskId = taskId;
    task.attempts += 1;
    this.counters.tasks += 1;
    const transfer: ArrayBuffer[] = [];
    const pixels = task.frames.map((f) => {
      // Frames were made transferable (own, whole buffers) in ownFrames(); copy mode keeps the originals for a retry.
      const rgb = this.transfer ? f.rgb : f.rgb.slice();
      transfer.push(rgb.buffer as ArrayBuffer);
      return rgb;
    });
    if (this.transfer) {
      task.gone = true;
      this.counters.transferred += pixels.length;
    } else {
      this.counters.copied += pixels.length;
    }
    const msg: ToWorker =
      task.kind === 'embed'
        ? { type: 'embed', taskId, size: this.inputSize, pixels }
        : { type: 'classify', taskId, size: this.inputSize, pixels: pixels[0]!, topK: task.topK };
    slot.worker.postMessage(msg, transfer);
  }

  private finished(slot: Slot, m: Extract<FromWorker, { type: 'done' | 'failed' }>): void {
    const task = slot.task;
    if (!task || slot.taskId !== m.taskId) return;
    slot.task = undefined;
    slot.taskId = undefined;
    if (slot.state === 'busy') slot.state = 'ready';
    const call = task.call;
    if (!call.settled) {
      if (m.type === 'failed') {
        this.fail(call, deserializeError(m.error, ErrorCodes.MODEL_INVALID, `embedding worker ${slot.n} failed`));
      } else if (task.kind === 'classify') {
        this.settle(call);
        call.classes!(m.classes ?? []);
      } else {
        const embs = m.embeddings ?? [];
        if (embs.length !== task.frames.length) {
          this.fail(
            call,
            new FramewiseError(ErrorCodes.MODEL_INVALID, `embedding worker ${slot.n} returned ${embs.length} embeddings for ${task.frames.length} frames`),
          );
        } else {
          embs.forEach((e, i) => (call.out[task.start + i] = e));
          call.remaining -= 1;
          if (call.remaining === 0) {
            this.settle(call);
            call.resolve(call.out as Float32Array[]);
          }
        }
      }
    }
    this.dispatch();
  }

  private settle(call: Call): void {
    call.settled = true;
    call.queue.length = 0;
    const i = this.calls.indexOf(call);
    if (i >= 0) {
      this.calls.splice(i, 1);
      if (i <= this.lastServed) this.lastServed -= 1;
    }
  }

  private fail(call: Call, err: unknown): void {
    if (call.settled) return;
    this.settle(call);
    call.reject(err);
  }

  // ---- checks ----

  private live(): void {
    if (this.closing) throw usage(`embedding pool ${this.id} was disposed`);
    if (this.broken) throw this.broken;
  }

  /** Frames whose buffers can be transferred without touching anyone else's data. */
  private ownFrames(frames: readonly RgbImage[]): RgbImage[] {
    if (!this.transfer) return [...frames];
    const seen = new Set<ArrayBufferLike>();
    return frames.map((f) => {
      const whole = f.rgb.byteOffset === 0 && f.rgb.byteLength === f.rgb.buffer.byteLength && f.rgb.buffer instanceof ArrayBuffer;
      if (whole && !seen.has(f.rgb.buffer)) {
        seen.add(f.rgb.buffer);
        return f;
      }
      this.counters.copied += 1;
      return { rgb: f.rgb.slice(), width: f.width, height: f.height };
    });
  }

  private check(f: RgbImage, i: number): void {
    const s = this.inputSize;
    if (!f || !(f.rgb instanceof Uint8Array) || f.width !== s || f.height !== s || f.rgb.length !== s * s * 3) {
      const detached = f?.rgb instanceof Uint8Array && f.rgb.buffer.byteLength === 0 ? ' (its buffer is detached: an earlier embed() on the pool took it)' : '';
      throw usage(
        `frame ${i} is ${f?.width}x${f?.height} with ${f?.rgb?.length} bytes${detached}; ${this.id} needs ${s}x${s} rgb24 ` +
          `(${s * s * 3} bytes): decode with size ${s}`,
      );
    }
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? `: ${err.message.split('\n')[0]}` : '';
}
