// `framewise worker`: a BullMQ Worker that takes label jobs and runs them through labelVideo,
// the same function `framewise label` uses, so the files are the same. Outputs go to a staging
// folder and are renamed into place (locations.ts) before the job is acknowledged: a job is
// complete in Redis only when its files are complete on disk.
//
// Failure model:
// - a job that throws is retried with exponential backoff up to its attempts, then failed with
//   "<code>: <message>" as its reason;
// - a worker that dies (SIGKILL, lost machine) stops renewing its job's lock; after lockMs the
//   next stall check of any worker (every stalledMs) puts the job back in the queue;
// - SIGTERM: stop taking jobs, give the current ones graceMs to finish, then abort them and put
//   them back in the queue (not counted as an attempt), close, exit 0;
// - Redis down at start: E_QUEUE_UNAVAILABLE; dropped later: ioredis reconnects, jobs wait.
import { hostname } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BackendRequest } from '../models/backend.ts';
import type { EngineRequest } from '../models/engine-choice.ts';
import type { PrecisionRequest } from '../models/precision.ts';
import { openModel, type OpenModel } from '../models/open-model.ts';
import { DEFAULTS } from '../core/defaults.ts';
import { asFramewiseError, ErrorCodes } from '../core/errors.ts';
import { labelVideo } from '../pipeline/run-label.ts';
import { bundleLocation, localBundle, localInput, stageOutputs } from './locations.ts';
import {
  bundleId,
  closeRedis,
  connectRedis,
  failureReason,
  LABEL_JOB,
  parseJobData,
  type JobProgress,
  type LabelJobData,
  type LabelJobResult,
} from './label-queue.ts';

/** Time after the grace for the worker to hand its jobs back before it stops regardless. */
const CLOSE_MARGIN_MS = 10_000;

export interface LabelWorkerOptions {
  /** redis://host:port */
  redis: string;
  queue?: string;
  /** Jobs at once in this process (default 1: the embedding engine already spreads one job's
   * frames over the cores; a second job mostly overlaps decoding with embedding). */
  concurrency?: number;
  modelsDir?: string;
  /** Cache root for weights and ONNX exports. */
  cacheDir?: string;
  backend?: BackendRequest;
  /** Embedding engine and tfjs pool threads (models/engine-choice.ts), as `label` takes them. */
  engine?: EngineRequest;
  /** Embedder precision (models/precision.ts); default auto. */
  precision?: PrecisionRequest;
  workers?: number;
  /** Lock duration and stall-check interval, ms (tests shorten them to see stalls quickly). */
  lockMs?: number;
  stalledMs?: number;
  progressMs?: number;
  connectTimeoutMs?: number;
  /** Bundles to open at start: the first job does not pay the model load, and a bundle or
   * weights missing on this machine is an error at start, not a failed job. */
  preload?: string[];
  log?: (line: string) => void;
}

export interface LabelWorker {
  /** `<host>:<pid>`, stored by BullMQ on every job this worker processes (job.processedBy). */
  readonly name: string;
  /** Stops taking jobs; running ones get graceMs to finish, then are released to the queue. */
  close(graceMs?: number): Promise<void>;
  /** Aborts running jobs now and puts them back in the queue (a second SIGTERM, Ctrl-C). */
  release(): void;
}

/** Opened models by bundle location; reloaded when the bundle at a location changes. */
class ModelCache {
  private readonly byLocation = new Map<string, { id: string; model: Promise<OpenModel> }>();
  private readonly retired: Promise<OpenModel>[] = [];

  constructor(
    private readonly o: {
      modelsDir?: string;
      cacheDir?: string;
      backend?: BackendRequest;
      engine?: EngineRequest;
      precision?: PrecisionRequest;
      workers?: number;
      log: (l: string) => void;
    },
  ) {}

  async get(location: string, expectedId: string): Promise<OpenModel> {
    let entry = this.byLocation.get(location);
    if (entry?.id !== expectedId) {
      const id = await bundleId(location);
      if (id !== expectedId) {
        throw new UnrecoverableError(
          failureReason(
            ErrorCodes.MODEL_INVALID,
            `model bundle ${location} changed since the job was queued (id ${id.slice(0, 12)}, job has ${expectedId.slice(0, 12)}); queue the videos again`,
          ),
        );
      }
      entry = this.byLocation.get(location);
      if (entry?.id !== id) {
        const old = entry;
        const { modelsDir, cacheDir, backend, engine, precision, workers, log } = this.o;
        const model = openModel({ bundle: localBundle(location), modelsDir, cacheDir, backend, engine, precision, workers, onProgress: log });
        entry = { id, model };
        this.byLocation.set(location, entry);
        model.catch(() => this.byLocation.get(location) === entry && this.byLocation.delete(location));
        // Jobs may still be running on the old model: it is disposed with the rest at close.
        if (old) this.retired.push(old.model);
      }
    }
    return entry.model;
  }

  async dispose(): Promise<void> {
    const all = [...this.retired, ...[...this.byLocation.values()].map((e) => e.model)];
    this.byLocation.clear();
    this.retired.length = 0;
    for (const model of all)
      await model.then(
        (m) => m.dispose(),
        () => undefined,
      );
  }
}

export interface RunJobOptions {
  jobId: string;
  model: OpenModel;
  signal?: AbortSignal;
  onProgress?: (p: JobProgress) => void;
  worker?: string;
}

/**
 * One label job, start to end, without BullMQ: stage, label, commit. Returns undefined when the
 * signal aborted it (nothing is committed).
 */
export async function runLabelJob(data: LabelJobData, o: RunJobOptions): Promise<LabelJobResult | undefined> {
  const started = performance.now();
  const stage = await stageOutputs(data.output, data.name, o.jobId);
  try {
    const result = await labelVideo({
      model: o.model,
      input: localInput(data.input),
      name: data.name,
      outDir: stage.dir,
      formats: data.options.formats,
      smoothing: data.options.smoothing,
      everyFrame: data.options.everyFrame,
      onProgress: (done, total) => o.onProgress?.({ done, total: total ?? null }),
      signal: o.signal,
    });
    if (result.aborted) {
      await stage.discard();
      return undefined;
    }
    const files = await stage.commit(result.files);
    return {
      frames: result.frames,
      segments: result.segments.length,
      files,
      ms: Math.round(performance.now() - started),
      worker: o.worker ?? workerName(),
      numTensors: tf.memory().numTensors,
    };
  } catch (err) {
    await stage.discard();
    throw err;
  }
}

export function workerName(): string {
  return `${hostname()}:${process.pid}`;
}

/** Progress updates at most every `everyMs` (each is a Redis write), plus the first and last. */
function throttledProgress(job: Job, everyMs: number, log: (l: string) => void): (p: JobProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (p.done !== 1 && p.done !== p.total && now - last < everyMs) return;
    last = now;
    job.updateProgress(p).catch((err: Error) => log(`progress of job ${job.id} not recorded: ${err.message}`));
  };
}

export async function startLabelWorker(o: LabelWorkerOptions): Promise<LabelWorker> {
  const log = o.log ?? (() => undefined);
  const name = workerName();
  const redis: Redis = await connectRedis(o.redis, { connectTimeoutMs: o.connectTimeoutMs });
  const models = new ModelCache({
    modelsDir: o.modelsDir,
    cacheDir: o.cacheDir,
    backend: o.backend,
    engine: o.engine,
    precision: o.precision,
    workers: o.workers,
    log,
  });
  try {
    for (const b of o.preload ?? []) {
      const location = bundleLocation(b);
      await models.get(location, await bundleId(location));
    }
  } catch (err) {
    await models.dispose();
    await closeRedis(redis);
    throw err;
  }
  let releasing = false;

  const processor = async (job: Job<LabelJobData, LabelJobResult>, token: string | undefined, signal: AbortSignal | undefined): Promise<LabelJobResult> => {
    if (job.name !== LABEL_JOB) throw new UnrecoverableError(failureReason(ErrorCodes.PROTOCOL, `unknown job kind "${job.name}"`));
    let data: LabelJobData;
    try {
      data = parseJobData(job.data);
    } catch (err) {
      throw new UnrecoverableError(failureReason(ErrorCodes.PROTOCOL, (err as Error).message));
    }
    log(`job ${job.id} ${data.name}: started (attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1})`);
    let result: LabelJobResult | undefined;
    try {
      const model = await models.get(data.bundle, data.bundleId);
      result = await runLabelJob(data, {
        jobId: job.id!,
        model,
        signal,
        onProgress: throttledProgress(job, o.progressMs ?? DEFAULTS.queue.progressMs, log),
        worker: name,
      });
    } catch (err) {
      if (err instanceof UnrecoverableError) throw err;
      const fe = asFramewiseError(err, ErrorCodes.WORKER_FAILED, 'labeling failed');
      log(`job ${job.id} ${data.name}: ${fe.code} ${fe.message}`);
      throw new Error(failureReason(fe.code, fe.message), { cause: fe });
    }
    if (!result) {
      if (releasing && token) {
        // Back to the queue for another worker, without using up an attempt.
        await job.moveToWait(token);
        log(`job ${job.id} ${data.name}: released to the queue`);
        throw new WaitingError();
      }
      throw new Error(failureReason(ErrorCodes.CANCELLED, `job cancelled: ${String(signal?.reason ?? 'aborted')}`));
    }
    log(`job ${job.id} ${data.name}: ${result.frames} frames in ${(result.ms / 1000).toFixed(1)} s`);
    return result;
  };

  const worker = new Worker<LabelJobData, LabelJobResult>(o.queue ?? DEFAULTS.queue.name, processor, {
    connection: redis,
    name,
    concurrency: o.concurrency ?? DEFAULTS.queue.concurrency,
    lockDuration: o.lockMs ?? DEFAULTS.queue.lockMs,
    stalledInterval: o.stalledMs ?? DEFAULTS.queue.stalledMs,
    // One stall (a killed worker) puts the job back; a job that kills every worker that takes it
    // (out of memory on a huge video) fails on its second stall instead of looping for ever.
    maxStalledCount: 1,
    autorun: false,
  });
  // Connection errors surface here while ioredis reconnects; the worker carries on after.
  let lastError = '';
  worker.on('error', (err) => {
    if (err.message !== lastError) log(`queue connection: ${err.message}`);
    lastError = err.message;
  });
  worker.on('ready', () => {
    if (lastError) log('queue connection: back');
    lastError = '';
  });
  void worker.run().catch((err: Error) => log(`worker stopped: ${err.message}`));
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  const release = () => {
    releasing = true;
    worker.cancelAllJobs('worker shutting down');
  };
  return {
    name,
    release,
    close(graceMs = DEFAULTS.queue.graceMs) {
      closing ??= (async () => {
        const timer = setTimeout(release, graceMs);
        // With Redis gone, close() waits for a reconnect that may never come; past the grace
        // (and a margin for the release to reach Redis) the worker stops anyway: its job's lock
        // expires and another worker takes the job.
        let stuck: NodeJS.Timeout | undefined;
        const giveUp = new Promise<void>((resolve) => {
          stuck = setTimeout(() => {
            log('Redis does not answer: stopping without it');
            resolve();
          }, graceMs + CLOSE_MARGIN_MS);
        });
        try {
          await Promise.race([worker.close(), giveUp]);
        } finally {
          clearTimeout(timer);
          clearTimeout(stuck);
          // The embedding pool lets an aborted job's last call finish before its threads end.
          await models.dispose();
          await closeRedis(redis);
        }
      })();
      return closing;
    },
  };
}
