// `framewise queue status` and `retry-failed`: what the queue holds, how fast it drains, and
// which jobs failed with which error code.
import type { Job } from 'bullmq';
import { parseFailureReason, type JobProgress, type LabelJobData, type LabelJobResult, type LabelQueue } from './label-queue.ts';

export const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed'] as const;
export type JobStateName = (typeof JOB_STATES)[number];

export interface Throughput {
  /** Completed jobs measured (the most recent ones, up to `recent`). */
  jobs: number;
  frames: number;
  /** From the first of them starting to the last finishing, ms. */
  windowMs: number;
  videosPerMin: number;
  framesPerSec: number;
  /** Mean wall time of one job in a worker, ms. */
  meanJobMs: number;
}

export interface FailedJob {
  id: string;
  name: string;
  input: string;
  code: string;
  message: string;
  attempts: number;
}

export interface QueueStatus {
  queue: string;
  counts: Record<JobStateName, number>;
  /** Worker processes connected now. */
  workers: number;
  throughput: Throughput | null;
  active: { id: string; name: string; progress: JobProgress | null; worker: string | null }[];
  failed: FailedJob[];
}

type LabelJob = Job<LabelJobData, LabelJobResult>;

/** Throughput over completed jobs; null without any. */
export function throughputOf(jobs: readonly Pick<LabelJob, 'processedOn' | 'finishedOn' | 'returnvalue'>[]): Throughput | null {
  const done = jobs.filter((j) => j.processedOn && j.finishedOn && j.returnvalue);
  if (done.length === 0) return null;
  const start = Math.min(...done.map((j) => j.processedOn!));
  const end = Math.max(...done.map((j) => j.finishedOn!));
  const windowMs = Math.max(1, end - start);
  const frames = done.reduce((n, j) => n + (j.returnvalue.frames ?? 0), 0);
  return {
    jobs: done.length,
    frames,
    windowMs,
    videosPerMin: (done.length / windowMs) * 60_000,
    framesPerSec: (frames / windowMs) * 1000,
    meanJobMs: done.reduce((n, j) => n + (j.returnvalue.ms ?? j.finishedOn! - j.processedOn!), 0) / done.length,
  };
}

export async function queueStatus(queue: LabelQueue, o: { recent?: number; failedLimit?: number } = {}): Promise<QueueStatus> {
  const raw = await queue.getJobCounts(...JOB_STATES);
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, raw[s] ?? 0])) as Record<JobStateName, number>;
  const [completed, failed, active, workers] = await Promise.all([
    queue.getCompleted(0, (o.recent ?? 1000) - 1) as Promise<LabelJob[]>,
    queue.getFailed(0, (o.failedLimit ?? 1000) - 1) as Promise<LabelJob[]>,
    queue.getActive(0, 99) as Promise<LabelJob[]>,
    queue.getWorkersCount(),
  ]);
  return {
    queue: queue.name,
    counts,
    workers,
    throughput: throughputOf(completed),
    active: active.map((j) => ({
      id: j.id!,
      name: j.data?.name ?? '?',
      progress: typeof j.progress === 'object' && j.progress !== null ? (j.progress as unknown as JobProgress) : null,
      worker: j.processedBy ?? null,
    })),
    failed: failed.map((j) => {
      const { code, message } = parseFailureReason(j.failedReason);
      return { id: j.id!, name: j.data?.name ?? '?', input: j.data?.input ?? '?', code, message, attempts: j.attemptsMade };
    }),
  };
}

export function formatStatus(s: QueueStatus): string {
  const lines = [
    `queue ${s.queue}: ${JOB_STATES.filter((k) => s.counts[k] > 0 || k === 'waiting' || k === 'active' || k === 'completed' || k === 'failed')
      .map((k) => `${k} ${s.counts[k]}`)
      .join(', ')}; workers ${s.workers}`,
  ];
  const t = s.throughput;
  if (t) {
    lines.push(
      `throughput (last ${t.jobs} completed): ${t.videosPerMin.toFixed(1)} videos/min, ${t.framesPerSec.toFixed(1)} frames/s, ` +
        `${(t.meanJobMs / 1000).toFixed(2)} s per video in a worker`,
    );
  }
  for (const a of s.active) {
    const p = a.progress ? ` ${a.progress.done}/${a.progress.total ?? '?'} frames` : '';
    lines.push(`  active  ${a.id}  ${a.name}${p}${a.worker ? ` on ${a.worker}` : ''}`);
  }
  const byCode = new Map<string, number>();
  for (const f of s.failed) byCode.set(f.code, (byCode.get(f.code) ?? 0) + 1);
  if (s.failed.length) lines.push(`failed by code: ${[...byCode].map(([c, n]) => `${c} ${n}`).join(', ')}`);
  for (const f of s.failed) lines.push(`  failed  ${f.id}  ${f.name}  ${f.code}  after ${f.attempts} attempt(s): ${f.message}`);
  return lines.join('\n') + '\n';
}

/** Puts every failed job back in the queue with its attempts reset (so it gets all of them
 * again, with the same backoff); returns how many. */
export async function retryFailed(queue: LabelQueue): Promise<number> {
  const total = await queue.getFailedCount();
  let n = 0;
  // A retried job leaves the failed set, so the first page is always the next one; the count
  // bounds the loop when a retried job fails again at once.
  while (n < total) {
    const page = await queue.getFailed(0, 199);
    if (page.length === 0) break;
    for (const job of page) {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      n++;
    }
  }
  return n;
}
