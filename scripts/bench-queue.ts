// Scale-out throughput in one run, on a real redis-server started here: the same corpus labeled
//   0. in this process with labelVideo, one video after another (what `label --jobs 1` does);
//   1-3. through the queue by 1, 2 and 3 `framewise worker` processes (model loads excluded:
//        every worker is warmed up on a job of its own first);
// plus the queue's own cost per job: tiny one-frame videos through 1 worker vs labelVideo here.
// The head has random weights (its cost is negligible next to the embedder); the embedder is real.
// Run: npx tsx scripts/bench-queue.ts [--videos 12] [--seconds 5] [--tiny 20] [--embedder ID] [--fps 10]
//      (prints numbers, not a test; needs redis-server and ffmpeg)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { openModel } from '../models/open-model.ts';
import { saveBundle } from '../models/recurrent/bundle.ts';
import { createHead } from '../models/recurrent/head.ts';
import { embedderInfo } from '../models/registry.ts';
import { labelVideo } from '../pipeline/run-label.ts';
import {
  JOB_DATA_VERSION,
  addLabelJobs,
  bundleId,
  closeRedis,
  connectRedis,
  openLabelQueue,
  type LabelJobData,
  type LabelQueue,
} from '../queue/label-queue.ts';
import { identifyInput } from '../queue/locations.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { makeClip, tmpDir } from '../test/helpers/video.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const VIDEOS = Number(arg('videos', '12'));
const SECONDS = Number(arg('seconds', '5'));
const TINY = Number(arg('tiny', '20'));
const FPS = Number(arg('fps', '10'));
const EMBEDDER = embedderInfo(arg('embedder', 'mobilenet_v1_0.25_224'));
const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const MODELS_DIR = resolve(ROOT, process.env.FRAMEWISE_MODELS || '../shared/models');
const SMOOTHING = {}; // the defaults, as `queue add` without options

const dir = tmpDir('framewise-bench-queue-');
const redis = await startRedis();
const children: ChildProcess[] = [];
try {
  const bundle = join(dir.path, 'bundle');
  const head = createHead({ inputDim: EMBEDDER.dim, classes: 4, hidden: 64, seed: 1 });
  await saveBundle(bundle, head, { classes: ['a', 'b', 'c', 'd'], embedderId: EMBEDDER.id, fps: FPS, crop: 'center' });
  head.dispose();
  const bid = await bundleId(bundle);

  // Distinct bytes per clip (the job id is the content): same length, a different source rate.
  const clipDir = join(dir.path, 'clips');
  mkdirSync(clipDir);
  const corpus = await Promise.all(
    Array.from({ length: VIDEOS }, (_, i) => makeClip({ durationSec: SECONDS, fps: 24 + i, width: 320, height: 240, dir: clipDir })),
  );
  const tinyJobs = await Promise.all(
    Array.from({ length: TINY + 1 }, (_, i) => makeClip({ durationSec: 0.1, fps: 10 + i, width: 64, height: 48, dir: clipDir })),
  );
  const warmup = tinyJobs.pop()!;

  console.log(
    `bench-queue: ${VIDEOS} videos of ${SECONDS} s (320x240) at ${FPS} fps = ${VIDEOS * SECONDS * FPS} frames, embedder ${EMBEDDER.id}, ` +
      `${TINY} tiny 1-frame videos; ${cpus().length} cores`,
  );

  // 0. In-process reference.
  const model = await openModel({ bundle, modelsDir: MODELS_DIR });
  const direct = async (videos: string[], out: string) => {
    const t0 = performance.now();
    let frames = 0;
    for (const v of videos) {
      const r = await labelVideo({ model, input: v, name: v.split('/').pop()!, outDir: out, smoothing: SMOOTHING });
      frames += r.frames;
    }
    return { sec: (performance.now() - t0) / 1000, frames };
  };
  await direct([warmup], join(dir.path, 'warm'));
  const base = await direct(corpus, join(dir.path, 'direct'));
  const baseTiny = await direct(tinyJobs, join(dir.path, 'direct-tiny'));
  model.dispose();
  const row = (what: string, sec: number, frames: number, videos: number, ref?: number) =>
    console.log(
      `${what.padEnd(28)} ${sec.toFixed(1).padStart(6)} s ${(frames / sec).toFixed(1).padStart(7)} frames/s ${((videos / sec) * 60).toFixed(1).padStart(7)} videos/min` +
        (ref ? `  x${(ref / sec).toFixed(2)}` : ''),
    );
  row('in-process labelVideo', base.sec, base.frames, VIDEOS, base.sec);

  const conn = await connectRedis(redis.url);
  const jobsFor = async (videos: string[], out: string): Promise<LabelJobData[]> =>
    Promise.all(
      videos.map(async (v) => ({
        v: JOB_DATA_VERSION,
        input: v,
        name: v.split('/').pop()!,
        output: out,
        bundle,
        bundleId: bid,
        ...(await identifyInput(v)),
        options: {},
      })),
    );
  const drain = async (queue: LabelQueue, total: number) => {
    while ((await queue.getCompletedCount()) + (await queue.getFailedCount()) < total) await new Promise((r) => setTimeout(r, 50));
    if ((await queue.getFailedCount()) > 0) throw new Error(`failed jobs: ${(await queue.getFailed()).map((j) => j.failedReason).join('; ')}`);
  };

  /** Workers started with the bundle preloaded (model loads excluded), then `videos` timed through them. */
  const viaQueue = async (workers: number, videos: string[], tag: string) => {
    const queue = openLabelQueue(conn, `bench-${tag}`);
    const procs = Array.from({ length: workers }, () => {
      const c = spawn(process.execPath, ['bin/framewise.js', 'worker', '--redis', redis.url, '--queue', queue.name, '--model', bundle], {
        cwd: ROOT,
        env: { ...process.env, FRAMEWISE_MODELS: MODELS_DIR },
        stdio: 'ignore',
      });
      children.push(c);
      return c;
    });
    // A worker registers with Redis once its model is loaded.
    while ((await queue.getWorkersCount()) < workers) await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    await addLabelJobs(queue, await jobsFor(videos, join(dir.path, `out-${tag}`)));
    await drain(queue, videos.length);
    const sec = (performance.now() - t0) / 1000;
    const done = await queue.getCompleted(0, -1);
    const frames = done.reduce((n, j) => n + j.returnvalue.frames, 0);
    const perWorker = new Map<string, number>();
    for (const j of done) perWorker.set(j.returnvalue.worker, (perWorker.get(j.returnvalue.worker) ?? 0) + 1);
    for (const c of procs) c.kill('SIGTERM');
    await Promise.all(procs.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
    await queue.obliterate({ force: true });
    await queue.close();
    return { sec, frames, split: [...perWorker.values()].sort((a, b) => b - a).join('/') };
  };

  for (const n of [1, 2, 3]) {
    const r = await viaQueue(n, corpus, `w${n}`);
    row(`queue, ${n} worker process${n > 1 ? 'es' : ''}`, r.sec, r.frames, VIDEOS, base.sec);
    console.log(`  jobs per worker: ${r.split}`);
  }
  const q = await viaQueue(1, tinyJobs, 'tiny');

  // BullMQ alone: jobs whose processor does nothing, through one in-process worker.
  const NOOP = 300;
  const noopQueue = new Queue('bench-noop', { connection: conn });
  const noopWorker = new Worker('bench-noop', async () => ({}), { connection: conn, autorun: true });
  await noopWorker.waitUntilReady();
  const tn = performance.now();
  await noopQueue.addBulk(Array.from({ length: NOOP }, (_, i) => ({ name: 'noop', data: { i }, opts: { jobId: `n${i}` } })));
  while ((await noopQueue.getCompletedCount()) < NOOP) await new Promise((r) => setTimeout(r, 20));
  const noopMs = (performance.now() - tn) / NOOP;
  await noopWorker.close();
  await noopQueue.obliterate({ force: true });
  await noopQueue.close();
  await closeRedis(conn);

  const perDirect = (baseTiny.sec / TINY) * 1000;
  const perQueue = (q.sec / TINY) * 1000;
  console.log(
    `per-job cost on 1-frame videos: in-process labelVideo ${perDirect.toFixed(0)} ms, via the queue (1 worker) ${perQueue.toFixed(0)} ms ` +
      `-> difference ${(perQueue - perDirect).toFixed(0)} ms per job (staging + rename, Redis round trips; noise when near 0)`,
  );
  console.log(`BullMQ alone (no-op jobs, 1 in-process worker): ${noopMs.toFixed(2)} ms per job`);
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis.stop();
  dir.cleanup();
}
