// The labeling queue on Redis (BullMQ): its name, the job's data and result, the job id, the
// bundle id, the Redis connection, and adding jobs. Shared by `framewise queue` (producer and
// status) and `framewise worker` (consumer); everything a worker needs travels in the job data.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue, type JobsOptions, type JobState } from 'bullmq';
import { Redis } from 'ioredis';
import { BUNDLE_FILES } from '../models/recurrent/bundle.ts';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError, type ErrorCode } from '../core/errors.ts';
import type { SmoothingOptions } from '../pipeline/segment.ts';
import { OUTPUT_FORMATS, type OutputFormat } from '../pipeline/sinks/index.ts';
import { isLocation, localBundle, type Location } from './locations.ts';

/** BullMQ job name of a label job (one queue may later hold other kinds). */
export const LABEL_JOB = 'label';
export const JOB_DATA_VERSION = 1;

/** Options of `label` that change the output files; fps and crop come from the bundle. */
export interface LabelJobOptions {
  formats?: OutputFormat[];
  everyFrame?: boolean;
  smoothing?: SmoothingOptions;
}

export interface LabelJobData {
  v: typeof JOB_DATA_VERSION;
  /** The video (locations.ts). */
  input: Location;
  /** Output base name, as `label` names it (may hold '/' for inputs found in folders). */
  name: string;
  /** Output folder. */
  output: Location;
  /** Model bundle folder, and its id when the job was queued (the worker checks it). */
  bundle: Location;
  bundleId: string;
  /** sha256 of the input's bytes (of the URL text for a URL) and its size. */
  sha256: string;
  bytes: number;
  options: LabelJobOptions;
}

export interface LabelJobResult {
  frames: number;
  segments: number;
  /** Final output files. */
  files: string[];
  /** Wall time of the attempt that completed, ms. */
  ms: number;
  /** `<host>:<pid>` of the worker that completed it. */
  worker: string;
  /** tf.memory().numTensors in that worker after the job (constant across jobs: no leak). */
  numTensors: number;
}

export interface JobProgress {
  done: number;
  total: number | null;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The job id: one job per (video content, bundle), so adding a corpus twice, or a video under
 * two names, queues it once. BullMQ ignores an add whose id exists in any state, completed and
 * failed included (`queue retry-failed` re-runs failed ones).
 */
export function labelJobId(sha256: string, bundleId: string): string {
  if (!HEX64.test(sha256) || !HEX64.test(bundleId)) {
    throw new FramewiseError(ErrorCodes.USAGE, 'labelJobId takes two sha256 hex digests');
  }
  return createHash('sha256').update(`${sha256}:${bundleId}`).digest('hex').slice(0, 40);
}

/**
 * sha256 over the bundle's framewise.json, model.json and every weight file model.json lists,
 * each prefixed by its name and length: a retrained bundle saved at the same path gets a new id.
 * A few MB read once per `queue add` and once per worker per bundle.
 */
export async function bundleId(location: Location): Promise<string> {
  const dir = localBundle(location);
  const read = async (file: string) => {
    try {
      return await readFile(join(dir, file));
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw new FramewiseError(
        missing ? ErrorCodes.MODEL_NOT_FOUND : ErrorCodes.MODEL_INVALID,
        `model bundle ${dir}: cannot read ${file} (${(err as Error).message})`,
        { cause: err },
      );
    }
  };
  const hash = createHash('sha256');
  const add = (file: string, bytes: Buffer) => hash.update(`${file}\n${bytes.length}\n`).update(bytes);
  add(BUNDLE_FILES.meta, await read(BUNDLE_FILES.meta));
  const modelBytes = await read(BUNDLE_FILES.model);
  add(BUNDLE_FILES.model, modelBytes);
  let paths: string[];
  try {
    const manifest = (JSON.parse(modelBytes.toString('utf8')) as { weightsManifest?: { paths?: string[] }[] }).weightsManifest;
    paths = (manifest ?? []).flatMap((g) => g.paths ?? []);
  } catch (err) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `model bundle ${dir}: ${BUNDLE_FILES.model} is not valid JSON`, { cause: err });
  }
  for (const p of paths) add(p, await read(p));
  return hash.digest('hex');
}

/** Checks job data read back from Redis (another version of framewise may have queued it). */
export function parseJobData(raw: unknown): LabelJobData {
  const bad = (what: string) => new FramewiseError(ErrorCodes.PROTOCOL, `invalid label job data: ${what}`);
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const d = raw as Record<string, unknown>;
  if (d.v !== JOB_DATA_VERSION) throw bad(`version ${String(d.v)}, this worker reads ${JOB_DATA_VERSION}`);
  for (const k of ['input', 'output', 'bundle'] as const) if (!isLocation(d[k])) throw bad(`${k} must be an absolute path or URL`);
  if (typeof d.name !== 'string' || d.name === '' || d.name.split('/').some((p) => p === '..' || p === '')) {
    throw bad('name must be a non-empty relative name without ".."');
  }
  if (typeof d.sha256 !== 'string' || !HEX64.test(d.sha256)) throw bad('sha256 must be a hex digest');
  if (typeof d.bundleId !== 'string' || !HEX64.test(d.bundleId)) throw bad('bundleId must be a hex digest');
  if (!Number.isInteger(d.bytes) || (d.bytes as number) < 0) throw bad('bytes must be a non-negative integer');
  const o = d.options;
  if (typeof o !== 'object' || o === null) throw bad('options must be an object');
  const opts = o as Record<string, unknown>;
  if (opts.formats !== undefined) {
    if (!Array.isArray(opts.formats) || !opts.formats.every((f) => (OUTPUT_FORMATS as readonly unknown[]).includes(f))) {
      throw bad(`options.formats must be a list of ${OUTPUT_FORMATS.join(', ')}`);
    }
  }
  if (opts.everyFrame !== undefined && typeof opts.everyFrame !== 'boolean') throw bad('options.everyFrame must be a boolean');
  if (opts.smoothing !== undefined && (typeof opts.smoothing !== 'object' || opts.smoothing === null)) throw bad('options.smoothing must be an object');
  return d as unknown as LabelJobData;
}

/** Job options: a few attempts, exponential backoff between them, jobs kept after they end (so
 * a re-add stays a no-op and `status` can report them). */
export function labelJobOptions(o: { attempts?: number; backoffMs?: number } = {}): JobsOptions {
  return {
    attempts: o.attempts ?? DEFAULTS.queue.attempts,
    backoff: { type: 'exponential', delay: o.backoffMs ?? DEFAULTS.queue.backoffMs },
    removeOnComplete: false,
    removeOnFail: false,
  };
}

// A failed job's reason is its error code, a colon, and the message: BullMQ stores only the
// message of what the processor threw, so the code travels in it.
export function failureReason(code: ErrorCode, message: string): string {
  return `${code}: ${message}`;
}

export function parseFailureReason(reason: string | undefined): { code: string; message: string } {
  const m = /^(E_[A-Z_]+): ([\s\S]*)$/.exec(reason ?? '');
  return m ? { code: m[1]!, message: m[2]! } : { code: 'E_UNKNOWN', message: reason ?? '' };
}

/** The URL with any password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export interface ConnectOptions {
  /** How long to keep trying at start before E_QUEUE_UNAVAILABLE. */
  connectTimeoutMs?: number;
}

/**
 * Connects to Redis and waits until it answers. Unreachable at start: E_QUEUE_UNAVAILABLE after
 * connectTimeoutMs. Once connected, a dropped connection is retried for ever with a capped
 * backoff (ioredis), and commands wait for it (maxRetriesPerRequest null, as BullMQ requires),
 * so a Redis restart pauses the workers instead of failing their jobs.
 */
export async function connectRedis(url: string, o: ConnectOptions = {}): Promise<Redis> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FramewiseError(ErrorCodes.USAGE, `--redis must be a URL like redis://host:6379, got "${url}"`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new FramewiseError(ErrorCodes.USAGE, `--redis must be a redis:// or rediss:// URL, got "${redactUrl(url)}"`);
  }
  const timeoutMs = o.connectTimeoutMs ?? DEFAULTS.queue.connectTimeoutMs;
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    connectTimeout: Math.min(timeoutMs, 10_000),
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 10), 5_000),
    lazyConnect: true,
  });
  let lastError: Error | undefined;
  // Errors while reconnecting are expected; without a listener ioredis prints each one.
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  const ready = new Promise<void>((resolve) => redis.once('ready', () => resolve()));
  redis.connect().catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([ready, timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    redis.disconnect();
    throw new FramewiseError(
      ErrorCodes.QUEUE_UNAVAILABLE,
      `cannot reach Redis at ${redactUrl(url)} within ${timeoutMs} ms (${lastError?.message ?? 'no answer'}); ` +
        'start redis-server there or pass the right --redis URL',
      { cause: lastError },
    );
  }
  return redis;
}

/** Closes a connection without waiting on a Redis that may be gone. */
export async function closeRedis(redis: Redis): Promise<void> {
  try {
    if (redis.status === 'ready') await redis.quit();
    else redis.disconnect();
  } catch {
    redis.disconnect();
  }
}

export type LabelQueue = Queue<LabelJobData, LabelJobResult, typeof LABEL_JOB>;

export function openLabelQueue(redis: Redis, name: string = DEFAULTS.queue.name): LabelQueue {
  return new Queue<LabelJobData, LabelJobResult, typeof LABEL_JOB>(name, { connection: redis });
}

export interface AddResult {
  /** Jobs that are new in the queue. */
  added: { id: string; name: string }[];
  /** Inputs whose job (same content and bundle) was already there, with its state. */
  existing: { id: string; name: string; state: JobState | 'unknown' }[];
}

/** Adds one job per item; items whose job id exists already are left as they are. */
export async function addLabelJobs(queue: LabelQueue, items: readonly LabelJobData[], jobOptions: JobsOptions = labelJobOptions()): Promise<AddResult> {
  const result: AddResult = { added: [], existing: [] };
  const fresh: { id: string; data: LabelJobData }[] = [];
  const seen = new Set<string>();
  for (const data of items) {
    const id = labelJobId(data.sha256, data.bundleId);
    const state = seen.has(id) ? 'waiting' : await queue.getJobState(id);
    if (state !== 'unknown' || seen.has(id)) {
      result.existing.push({ id, name: data.name, state });
      continue;
    }
    seen.add(id);
    fresh.push({ id, data });
  }
  // addBulk is one MULTI; BullMQ's add script skips an id that appeared meanwhile (another
  // `queue add` racing this one), so the check above only shapes the report.
  for (let i = 0; i < fresh.length; i += 500) {
    const batch = fresh.slice(i, i + 500);
    await queue.addBulk(batch.map(({ id, data }) => ({ name: LABEL_JOB, data, opts: { ...jobOptions, jobId: id } })));
    result.added.push(...batch.map(({ id, data }) => ({ id, name: data.name })));
  }
  return result;
}
