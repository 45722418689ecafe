// File jobs: label a video from the media folder (or an upload) with the offline pipeline
// (pipeline/run-label.ts: lossless decode -> embed -> label -> JSONL/CSV/VTT/ActivityNet files)
// and stream its labels to every subscribed socket as they are computed.
//
// Jobs run one at a time: they share the embedder with the live sessions on a 2-core machine, and
// a second concurrent job would only slow both. Labels reach subscribers from the pipeline's
// onLabel callback, pushed in batches at most every STREAM_MS (with the progress); a subscriber
// that joins late sees labels from then on, and every client gets the complete per-frame file
// over HTTP when the job is done.
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import type { Embedder } from '../models/embedder.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import type { BundleMeta } from '../models/recurrent/bundle.ts';
import { asFramewiseError, ErrorCodes, FramewiseError } from '../core/errors.ts';
import { DEFAULTS } from '../core/defaults.ts';
import { playbackCopyPath, transcodeForBrowser, unplayableReason } from '../pipeline/playback.ts';
import { labelVideo } from '../pipeline/run-label.ts';
import type { OutputFormat } from '../pipeline/sinks/index.ts';
import type { FrameLabel } from '../core/types.ts';
import type { MediaRoot } from './paths.ts';
import { publicMessage } from './public-message.ts';
import { labelMessage, type JobInfo, type JobMessage, type LabelMessage } from './protocol.ts';

const STREAM_MS = 100;
/** Finished jobs kept (their files too); older ones are removed. */
const KEEP_JOBS = 50;

export interface JobManagerConfig {
  embedder: Embedder;
  head: RecurrentHead;
  meta: Pick<BundleMeta, 'classes' | 'fps' | 'crop' | 'unknownBelow' | 'unknownFar'>;
  media: MediaRoot | undefined;
  /** Where job outputs and uploads go (created). */
  jobsDir: string;
  maxUploadBytes: number;
  /** Cache root for H.264 copies of videos browsers cannot play (default DEFAULTS.cacheDir). */
  cacheDir?: string;
  log: (line: string) => void;
}

export interface JobListener {
  job(msg: JobMessage): void;
  label(msg: LabelMessage): void;
}

/** Download kinds and the output format behind each. */
export const JOB_FILES: Record<keyof JobInfo['files'], OutputFormat> = { jsonl: 'jsonl', vtt: 'vtt', segments: 'activitynet', csv: 'csv' };

interface Job {
  info: JobInfo;
  input: string;
  dir: string;
  outputs: Partial<Record<OutputFormat, string>>;
  /** The browser-playable copy, once made. */
  playbackFile?: string;
  listeners: Set<JobListener>;
  /** Labels computed since the last push to listeners, and the index of the last one pushed. */
  pending: FrameLabel[];
  lastIndex: number;
  abort: AbortController;
}

export class JobManager {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running = false;
  private closed = false;
  /** The job being labeled, so that close() can wait for its files to be finished. */
  private current: Promise<void> | undefined;

  constructor(private readonly config: JobManagerConfig) {
    mkdirSync(config.jobsDir, { recursive: true });
  }

  /** A job on a file of the media folder, named relative to it (E_FORBIDDEN outside it). */
  createFromMedia(relPath: string): JobInfo {
    if (!this.config.media) throw new FramewiseError(ErrorCodes.USAGE, 'this server was started without --media: upload the video instead');
    const real = this.config.media.resolve(relPath);
    const url = '/media/' + relPath.split('/').filter(Boolean).map(encodeURIComponent).join('/');
    return this.start(real, basename(relPath), url);
  }

  /** A job on an uploaded body, stored in the job's folder (size-capped). */
  async createFromUpload(name: string, body: Readable): Promise<JobInfo> {
    const id = newId();
    const dir = join(this.config.jobsDir, id);
    mkdirSync(dir, { recursive: true });
    const ext = (extname(name)
      .toLowerCase()
      .match(/^\.[a-z0-9]{1,5}$/) ?? ['.video'])[0];
    const file = join(dir, `upload${ext}`);
    let bytes = 0;
    const cap = this.config.maxUploadBytes;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > cap) done(new FramewiseError(ErrorCodes.USAGE, `upload exceeds ${cap} bytes`));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(body, limit, createWriteStream(file));
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw asFramewiseError(err, ErrorCodes.INPUT_NOT_FOUND, 'upload failed');
    }
    if (bytes === 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new FramewiseError(ErrorCodes.USAGE, 'empty upload');
    }
    const safeName =
      basename(name)
        .replace(/[^\w.\- ]+/g, '_')
        .slice(0, 100) || 'upload';
    return this.start(file, safeName, `/api/jobs/${id}/video`, id, dir);
  }

  get(id: string): JobInfo | undefined {
    return this.jobs.get(id)?.info;
  }

  list(): JobInfo[] {
    return [...this.jobs.values()].map((j) => j.info);
  }

  /** The video a job labels (for /api/jobs/:id/video). */
  videoPath(id: string): string | undefined {
    return this.jobs.get(id)?.input;
  }

  /** The job's browser-playable copy (for /api/jobs/:id/playback), once made. */
  playbackPath(id: string): string | undefined {
    return this.jobs.get(id)?.playbackFile;
  }

  /** An output file of a job, once it exists. */
  filePath(id: string, kind: string): string | undefined {
    const job = this.jobs.get(id);
    if (!job || !Object.hasOwn(JOB_FILES, kind)) return undefined;
    return job.outputs[JOB_FILES[kind as keyof JobInfo['files']]];
  }

  /** Sends the job's status now and its labels and status changes from now on. */
  subscribe(id: string, listener: JobListener): () => void {
    const job = this.jobs.get(id);
    if (!job) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no job ${id}`);
    job.listeners.add(listener);
    listener.job(this.message(job));
    return () => job.listeners.delete(listener);
  }

  /** Cancels every job; resolves once the running one has stopped writing. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.jobs.values()) job.abort.abort();
    this.queue.length = 0;
    await this.current;
  }

  private start(input: string, name: string, videoUrl: string, id = newId(), dir = join(this.config.jobsDir, id)): JobInfo {
    mkdirSync(dir, { recursive: true });
    const info: JobInfo = { id, name, status: 'queued', framesDone: 0, framesTotal: 0, durationMs: 0, videoUrl, files: {} };
    const job: Job = { info, input, dir, outputs: {}, listeners: new Set(), pending: [], lastIndex: -1, abort: new AbortController() };
    this.jobs.set(id, job);
    this.queue.push(job);
    this.prune();
    void this.pump();
    return info;
  }

  private prune(): void {
    const done = [...this.jobs.values()].filter((j) => j.info.status === 'done' || j.info.status === 'failed');
    for (const j of done.slice(0, Math.max(0, done.length - KEEP_JOBS))) {
      this.jobs.delete(j.info.id);
      rmSync(j.dir, { recursive: true, force: true });
    }
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed) await (this.current = this.run(this.queue.shift()!));
    } finally {
      this.running = false;
    }
  }

  private async run(job: Job): Promise<void> {
    const stem = basename(job.info.name, extname(job.info.name)).replace(/[^\w.\-]+/g, '_') || 'video';
    job.info.status = 'running';
    this.publish(job);
    let lastPush = 0;
    job.outputs = { jsonl: join(job.dir, `${stem}.frames.jsonl`) };
    try {
      const result = await labelVideo({
        model: this.config,
        input: job.input,
        name: stem,
        outDir: job.dir,
        // Small chunks: the job's embed calls share the model with live sessions, whose latency
        // is bounded by the longest call in front of them.
        inFlight: 8,
        chunk: 4,
        signal: job.abort.signal,
        onLabel: (l) => job.pending.push(l),
        onProgress: (done, total) => {
          job.info.framesDone = done;
          job.info.framesTotal = total ?? 0;
          const now = performance.now();
          if (now - lastPush >= STREAM_MS) {
            lastPush = now;
            this.streamLabels(job);
            this.publish(job);
          }
        },
      });
      job.outputs = result.files;
      this.streamLabels(job);
      job.info.framesDone = result.frames;
      job.info.framesTotal = result.frames;
      job.info.durationMs = result.info?.durationMs ?? 0;
      job.info.segments = result.segments.map((s) => ({ label: s.label, startMs: s.startMs, endMs: s.endMs, score: s.score }));
      job.info.files = Object.fromEntries(
        Object.entries(JOB_FILES)
          .filter(([, f]) => result.files[f])
          .map(([k]) => [k, `/api/jobs/${job.info.id}/files/${k}`]),
      );
      job.info.status = result.aborted ? 'failed' : 'done';
      if (result.aborted) job.info.error = { code: ErrorCodes.CANCELLED, message: 'the job was cancelled' };
      const reason = !result.aborted && result.info ? unplayableReason(result.info) : undefined;
      if (reason) await this.makePlayable(job, reason, result.info!.durationMs);
    } catch (err) {
      const e = asFramewiseError(err, ErrorCodes.DECODE_FAILED, `labeling ${job.info.name} failed`);
      this.config.log(`job ${job.info.id} failed: ${e.message}`);
      job.info.status = 'failed';
      job.info.error = { code: e.code, message: publicMessage(e.message) };
    }
    this.publish(job);
  }

  /**
   * The labels are published first (status done); then ffmpeg makes an H.264 copy for playback,
   * with progress, and videoUrl moves to it. A failure leaves the labels and says why.
   */
  private async makePlayable(job: Job, reason: string, durationMs: number): Promise<void> {
    job.info.playback = { state: 'converting', progress: 0, reason };
    this.publish(job);
    let lastPush = 0;
    try {
      const out = playbackCopyPath(job.input, this.config.cacheDir ?? DEFAULTS.cacheDir);
      job.playbackFile = await transcodeForBrowser(job.input, out, {
        durationMs,
        signal: job.abort.signal,
        onProgress: (f) => {
          job.info.playback!.progress = f;
          const now = performance.now();
          if (now - lastPush >= 250) {
            lastPush = now;
            this.publish(job);
          }
        },
      });
      job.info.videoUrl = `/api/jobs/${job.info.id}/playback`;
      job.info.playback = { state: 'ready', progress: 1, reason };
    } catch (err) {
      const e = asFramewiseError(err, ErrorCodes.DECODE_FAILED, 'playback conversion failed');
      this.config.log(`job ${job.info.id}: ${e.message}`);
      job.info.playback = { state: 'failed', progress: 0, reason, error: `${e.message} [${e.code}]` };
    }
  }

  private message(job: Job): JobMessage {
    const t = job.lastIndex;
    return {
      type: 'job',
      streamId: `job-${job.info.id}`,
      index: t,
      timestampMs: 0,
      job: { ...job.info, ...(job.info.playback ? { playback: { ...job.info.playback } } : {}) },
    };
  }

  private publish(job: Job): void {
    const msg = this.message(job);
    for (const l of job.listeners) l.job(msg);
  }

  /** Sends the labels computed since the last push (batched, so a fast job does not flood clients). */
  private streamLabels(job: Job): void {
    const labels = job.pending.splice(0);
    const last = labels.at(-1);
    if (last) job.lastIndex = last.index;
    const streamId = `job-${job.info.id}`;
    for (const l of labels) {
      const msg = labelMessage({ ...l, streamId });
      for (const listener of job.listeners) listener.label(msg);
    }
  }
}

function newId(): string {
  return randomBytes(6).toString('hex');
}
