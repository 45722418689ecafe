// Scale-out labeling on a real redis-server (started here on a free loopback port) with real
// worker processes (`node bin/framewise.js worker`): outputs equal a single-process labelVideo
// run, a SIGKILLed worker's job is taken again after the stall check, a bad video fails alone
// with its code, adding twice is idempotent, SIGTERM finishes or releases, Redis down is E_QUEUE_UNAVAILABLE.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openModel, type OpenModel } from '../../models/open-model.ts';
import { saveBundle } from '../../models/recurrent/bundle.ts';
import { createHead } from '../../models/recurrent/head.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { labelVideo } from '../../pipeline/run-label.ts';
import { FORMAT_SUFFIX, OUTPUT_FORMATS } from '../../pipeline/sinks/index.ts';
import { main } from '../../scripts/cli.ts';
import { bundleLocation, inputLocation, outputLocation, STAGING_DIR } from '../../queue/locations.ts';
import { bundleId, closeRedis, connectRedis, labelJobId, openLabelQueue, parseFailureReason, parseJobData, type LabelQueue } from '../../queue/label-queue.ts';
import { queueStatus } from '../../queue/status.ts';
import { MODELS_DIR, REPO_ROOT } from '../helpers/real-models.ts';
import { startRedis, type RedisServer } from '../helpers/redis-server.ts';
import { makeClip, makeTextFile, tmpDir, type TmpDir } from '../helpers/video.ts';

const EMBEDDER = 'mobilenet_v1_0.25_224';
const SMOOTHING = {
  minSegmentMs: DEFAULTS.smoothing.minSegmentMs,
  hysteresisFrames: DEFAULTS.smoothing.hysteresisFrames,
  windowFrames: DEFAULTS.smoothing.windowFrames,
};
// Short lock and stall check so a killed worker's job comes back in seconds, not a minute; long
// enough that a live worker whose event loop the rest of the suite holds up on two cores keeps its
// lock (at 3 s a live worker's job was seen stalled twice under the full suite and failed).
const LOCK_MS = 8000;
const STALLED_MS = 2000;

let dir: TmpDir;
let redis: RedisServer;
let bundle: string;
let videos: string[] = []; // 12 short clips, the first one longer (the one a worker is killed on)
let bad: string;
let longer: string[] = []; // two more long clips for the SIGTERM test
const refDir = () => join(dir.path, 'ref');
const outDir = () => join(dir.path, 'out');
const stem = (p: string) =>
  p
    .split('/')
    .pop()!
    .replace(/\.[^.]+$/, '');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (s: string) => ((stdout += s), true) },
    stderr: { write: (s: string) => ((stderr += s), true) },
  } as unknown as Parameters<typeof main>[1];
  const code = await main(args, io);
  return { code, stdout, stderr };
}

interface WorkerProc {
  child: ChildProcess;
  pid: number;
  log: () => string;
  exited: Promise<number | null>;
}

function spawnWorker(queue: string, extra: string[] = [], redisUrl = redis.url): WorkerProc {
  const child = spawn(
    process.execPath,
    ['bin/framewise.js', 'worker', '--redis', redisUrl, '--queue', queue, '--lock-ms', String(LOCK_MS), '--stalled-ms', String(STALLED_MS), ...extra],
    { cwd: REPO_ROOT, env: { ...process.env, FRAMEWISE_MODELS: MODELS_DIR }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.off('exit', orphan);
      resolve(code);
    }),
  );
  return { child, pid: child.pid!, log: () => log, exited };
}

/** Every file under a folder, as relative paths, sorted (folders that vanish meanwhile are skipped). */
function listFiles(root: string, skip?: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return; // removed while we looked (a stage folder being discarded)
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== skip) walk(p);
      } else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

const expectedFiles = (names: string[]) => names.flatMap((n) => OUTPUT_FORMATS.map((f) => n + FORMAT_SUFFIX[f])).sort();

async function addJobs(queue: string, inputs: string[], extra: string[] = []) {
  return cli(['queue', 'add', ...inputs, '--model', bundle, '--redis', redis.url, '--queue', queue, '--out', outDir(), ...extra]);
}

beforeAll(async () => {
  dir = tmpDir('framewise-queue-');
  redis = await startRedis();
  bundle = join(dir.path, 'bundle');
  const head = createHead({ inputDim: 256, classes: 3, hidden: 16, seed: 7 });
  try {
    await saveBundle(bundle, head, { classes: ['idle', 'walk', 'wave'], embedderId: EMBEDDER, fps: 5, crop: 'center' });
  } finally {
    head.dispose();
  }
  const clips = join(dir.path, 'clips');
  mkdirSync(clips);
  const colors = ['red', 'green', 'blue', 'yellow', 'white', 'gray'];
  const specs = [
    { durationSec: 16, fps: 15, width: 160, height: 120, dir: clips },
    ...Array.from({ length: 11 }, (_, i) => ({
      durationSec: 1 + (i % 3) * 0.5,
      fps: 10 + i,
      width: 96 + 16 * (i % 4),
      height: 72 + 8 * (i % 3),
      pattern: i % 2 === 0 ? ('testsrc2' as const) : ('color' as const),
      color: colors[i % colors.length],
      dir: clips,
    })),
  ];
  videos = [];
  for (const s of specs) videos.push(await makeClip(s));
  longer = [
    await makeClip({ durationSec: 30, fps: 15, width: 176, height: 120, dir: clips }),
    await makeClip({ durationSec: 30, fps: 16, width: 160, height: 128, dir: clips }),
  ];
  bad = makeTextFile(dir.path, 'broken.mp4');

  // The single-machine reference: labelVideo in this process, as `framewise label` calls it.
  const model: OpenModel = await openModel({ bundle, modelsDir: MODELS_DIR });
  try {
    for (const v of [...videos, ...longer]) {
      await labelVideo({ model, input: v, name: stem(v), outDir: refDir(), smoothing: SMOOTHING });
    }
  } finally {
    model.dispose();
  }
}, 180_000);

afterAll(async () => {
  await redis?.stop();
  dir?.cleanup();
});

describe('job data, ids and locations', () => {
  test('the job id depends on the content and the bundle, nothing else', async () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect(labelJobId(a, b)).toBe(labelJobId(a, b));
    expect(labelJobId(a, b)).not.toBe(labelJobId(b, b));
    expect(labelJobId(a, b)).not.toBe(labelJobId(a, a));
    expect(labelJobId(a, b)).not.toContain(':'); // BullMQ rejects ':' in custom ids
    expect(() => labelJobId('x', b)).toThrow(/sha256/);
  });

  test('the bundle id is stable and changes when the weights change', async () => {
    const id = await bundleId(bundle);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(await bundleId(bundle)).toBe(id);
    const copy = join(dir.path, 'bundle-copy');
    const head = createHead({ inputDim: 256, classes: 3, hidden: 16, seed: 8 });
    try {
      await saveBundle(copy, head, { classes: ['idle', 'walk', 'wave'], embedderId: EMBEDDER, fps: 5, crop: 'center' });
    } finally {
      head.dispose();
    }
    expect(await bundleId(copy)).not.toBe(id);
    await expect(bundleId(join(dir.path, 'no-bundle'))).rejects.toMatchObject({ code: 'E_MODEL_NOT_FOUND' });
  });

  test('locations are absolute; stdin, stdout and object storage are refused', () => {
    expect(inputLocation('a/b.mp4', '/data')).toBe('/data/a/b.mp4');
    expect(inputLocation('https://x.org/v.mp4')).toBe('https://x.org/v.mp4');
    expect(outputLocation('out', '/data')).toBe('/data/out');
    expect(bundleLocation('/m/b')).toBe('/m/b');
    expect(() => inputLocation('-')).toThrow(/stdin/);
    expect(() => outputLocation('-')).toThrow(/stdout/);
    expect(() => outputLocation('s3://bucket/out')).toThrow(/not supported yet/);
  });

  test('job data from Redis is checked before a worker acts on it', () => {
    const good = {
      v: 1,
      input: '/in/a.mp4',
      name: 'a',
      output: '/out',
      bundle: '/b',
      bundleId: 'c'.repeat(64),
      sha256: 'd'.repeat(64),
      bytes: 10,
      options: { formats: ['jsonl'] },
    };
    expect(parseJobData(good)).toEqual(good);
    expect(() => parseJobData({ ...good, v: 2 })).toThrow(/version/);
    expect(() => parseJobData({ ...good, input: 'relative.mp4' })).toThrow(/input/);
    expect(() => parseJobData({ ...good, name: '../escape' })).toThrow(/name/);
    expect(() => parseJobData({ ...good, options: { formats: ['png'] } })).toThrow(/formats/);
    expect(() => parseJobData(null)).toThrow(/object/);
  });

  test('failure reasons carry the error code', () => {
    expect(parseFailureReason('E_DECODE_FAILED: ffprobe could not read x')).toEqual({ code: 'E_DECODE_FAILED', message: 'ffprobe could not read x' });
    expect(parseFailureReason('something else').code).toBe('E_UNKNOWN');
  });
});

describe('Redis unreachable', () => {
  test('queue and worker exit with E_QUEUE_UNAVAILABLE and a clear message', async () => {
    const url = `redis://127.0.0.1:${redis.port}/`.replace(String(redis.port), String(await closedPort()));
    const r = await cli(['queue', 'status', '--redis', url, '--connect-timeout', '1000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+.*\[E_QUEUE_UNAVAILABLE\]/s);
    const w = spawnWorker('unreachable', ['--connect-timeout', '1000'], url);
    const code = await w.exited;
    expect(code).toBe(1);
    expect(w.log()).toMatch(/cannot reach Redis at .* within 1000 ms .*\[E_QUEUE_UNAVAILABLE\]/);
  }, 30_000);
});

describe('worker start-up', () => {
  test('a bundle to preload that is missing on this machine stops the worker at start with its code', async () => {
    const w = spawnWorker('preload', ['--model', join(dir.path, 'missing-bundle')]);
    expect(await w.exited).toBe(1);
    expect(w.log()).toMatch(/missing-bundle.*\[E_MODEL_NOT_FOUND\]/);
  }, 30_000);
});

async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('3 worker processes label 12 videos', () => {
  const QUEUE = 'fw-test-main';
  let queue: LabelQueue;
  let conn: Awaited<ReturnType<typeof connectRedis>>;
  const workers: WorkerProc[] = [];

  beforeAll(async () => {
    conn = await connectRedis(redis.url);
    queue = openLabelQueue(conn, QUEUE);
  });
  afterAll(async () => {
    if (process.env.FRAMEWISE_TEST_LOGS) for (const w of workers) process.stderr.write(`--- worker ${w.pid}\n${w.log()}`);
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await queue?.close();
    if (conn) await closeRedis(conn);
  });

  test('adding the same videos twice queues them once', async () => {
    const first = await addJobs(QUEUE, [...videos, bad], ['--attempts', '2', '--backoff', '300']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout.trim().split('\n')).toHaveLength(13);
    const again = await addJobs(QUEUE, [...videos, bad]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/added 0 job\(s\), 13 already/);
    expect((await queue.getJobCounts()).waiting).toBe(13);
    // The job carries everything a worker on another machine needs.
    const job = await queue.getJob(first.stdout.split('\t')[0]!);
    expect(job!.data).toMatchObject({ input: videos[0], name: stem(videos[0]!), output: outDir(), bundle, options: { smoothing: SMOOTHING } });
  });

  test('one SIGKILLed mid-job, a dropped connection: every output once, equal to single-process labelVideo', async () => {
    // Readers polling the output folder must never see a file that differs from the final one.
    const partial: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const f of listFiles(outDir(), STAGING_DIR)) {
          const ref = join(refDir(), f);
          if (existsSync(ref) && !readFileSync(join(outDir(), f)).equals(readFileSync(ref))) partial.push(f);
        }
        await new Promise((r) => setTimeout(r, 30));
      }
    })();

    for (let i = 0; i < 3; i++) workers.push(spawnWorker(QUEUE));
    const longId = labelJobId(createHashOf(videos[0]!), await bundleId(bundle));
    // Kill the worker running the long video once it has labeled at least one frame.
    let killed: WorkerProc | undefined;
    const deadline = Date.now() + 90_000;
    while (!killed && Date.now() < deadline) {
      const job = await queue.getJob(longId);
      const progress = job?.progress as { done?: number } | undefined;
      if (job && (await job.getState()) === 'active' && job.processedBy && (progress?.done ?? 0) >= 1) {
        const pid = Number(job.processedBy.split(':').pop());
        killed = workers.find((w) => w.pid === pid);
        killed?.child.kill('SIGKILL');
      } else await new Promise((r) => setTimeout(r, 25));
    }
    expect(killed, 'a worker was running the long video').toBeDefined();
    await killed!.exited;
    // Every client connection dropped at once (workers and this test): ioredis reconnects.
    // (each worker has a command and a blocking connection, this test one: at least 5)
    expect(Number(await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal'))).toBeGreaterThanOrEqual(5);

    await waitForCounts(queue, (c) => c.completed === 12 && c.failed === 1, 120_000);
    watching = false;
    await watcher;

    const names = videos.map(stem);
    expect(listFiles(outDir())).toEqual(expectedFiles(names));
    expect(existsSync(join(outDir(), STAGING_DIR))).toBe(false);
    for (const f of expectedFiles(names)) {
      expect(readFileSync(join(outDir(), f)).equals(readFileSync(join(refDir(), f))), `${f} equals the labelVideo output`).toBe(true);
    }
    expect(partial).toEqual([]);

    const long = await queue.getJob(longId);
    expect(long!.stalledCounter).toBeGreaterThanOrEqual(1);
    expect(long!.returnvalue.worker).not.toBe(`${long!.returnvalue.worker.split(':')[0]}:${killed!.pid}`);
    expect(long!.returnvalue.frames).toBe(
      readFileSync(join(refDir(), `${stem(videos[0]!)}.frames.jsonl`), 'utf8')
        .trim()
        .split('\n').length,
    );

    // Each worker's tensor count is the same after every job it ran: no leak per job.
    const done = await queue.getCompleted(0, 100);
    const byWorker = new Map<string, Set<number>>();
    for (const j of done) byWorker.set(j.returnvalue.worker, (byWorker.get(j.returnvalue.worker) ?? new Set()).add(j.returnvalue.numTensors));
    for (const counts of byWorker.values()) expect(counts.size).toBe(1);

    // The bad video failed alone, after its 2 attempts, with its code.
    const failed = await queue.getFailed();
    expect(failed.map((j) => j.data.name)).toEqual(['broken']);
    expect(failed[0]!.attemptsMade).toBe(2);
    expect(failed[0]!.failedReason).toMatch(/^E_DECODE_FAILED: /);
  }, 180_000);

  test('status: counts by state, throughput, failed jobs with their codes', async () => {
    const s = await queueStatus(queue);
    expect(s.counts).toEqual({ waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 12, failed: 1 });
    expect(s.workers).toBe(2);
    expect(s.throughput!.jobs).toBe(12);
    expect(s.throughput!.frames).toBe(
      videos.reduce(
        (n, v) =>
          n +
          readFileSync(join(refDir(), `${stem(v)}.frames.jsonl`), 'utf8')
            .trim()
            .split('\n').length,
        0,
      ),
    );
    expect(s.throughput!.framesPerSec).toBeGreaterThan(0);
    expect(s.failed).toEqual([expect.objectContaining({ name: 'broken', code: 'E_DECODE_FAILED', attempts: 2 })]);
    const text = await cli(['queue', 'status', '--redis', redis.url, '--queue', QUEUE]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/waiting 0, active 0, completed 12, failed 1; workers 2/);
    expect(text.stdout).toMatch(/videos\/min/);
    expect(text.stdout).toMatch(/failed by code: E_DECODE_FAILED 1/);
  });

  test('retry-failed puts the failed job back; it fails again with the same code', async () => {
    const r = await cli(['queue', 'retry-failed', '--redis', redis.url, '--queue', QUEUE]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/1 failed job\(s\) back/);
    await waitForCounts(queue, (c) => c.failed === 1 && c.waiting + c.active + c.delayed === 0, 30_000);
    const [job] = await queue.getFailed();
    expect(job!.failedReason).toMatch(/^E_DECODE_FAILED: /);
    expect(job!.attemptsMade).toBe(2);
  }, 40_000);

  test('SIGTERM: a second signal releases the job to another worker; a single one lets it finish; exit 0', async () => {
    const live = workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
    expect(live).toHaveLength(2);
    const id = await bundleId(bundle);
    const [l1, l2] = longer.map((v) => labelJobId(createHashOf(v), id));

    // Released: X gets SIGTERM twice mid-job; the job goes back and Y completes it.
    expect((await addJobs(QUEUE, [longer[0]!])).code).toBe(0);
    const x = await waitForActive(queue, l1!, live);
    x.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    x.child.kill('SIGTERM');
    expect(await x.exited).toBe(0);
    expect(x.log()).toMatch(/released to the queue/);
    const y = live.find((w) => w !== x)!;
    await waitForCounts(queue, (c) => c.completed === 13, 60_000);
    const j1 = await queue.getJob(l1!);
    expect(j1!.returnvalue.worker.endsWith(`:${y.pid}`)).toBe(true);
    expect(j1!.attemptsMade).toBe(1); // the release did not use up an attempt

    // Finished: Y gets one SIGTERM mid-job, completes it, then exits.
    expect((await addJobs(QUEUE, [longer[1]!])).code).toBe(0);
    await waitForActive(queue, l2!, [y]);
    const signalledAt = Date.now();
    y.child.kill('SIGTERM');
    expect(await y.exited).toBe(0);
    expect(y.log()).toMatch(/SIGTERM: finishing current jobs/);
    const j2 = await queue.getJob(l2!);
    expect(await j2!.getState()).toBe('completed');
    expect(j2!.finishedOn).toBeGreaterThan(signalledAt); // it was running when the signal came
    expect(j2!.returnvalue.worker.endsWith(`:${y.pid}`)).toBe(true);
    for (const v of longer) {
      for (const f of expectedFiles([stem(v)])) expect(readFileSync(join(outDir(), f)).equals(readFileSync(join(refDir(), f)))).toBe(true);
    }
  }, 120_000);
});

function createHashOf(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function waitForCounts(queue: LabelQueue, ok: (c: Record<string, number>) => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: Record<string, number> = {};
  while (Date.now() < end) {
    last = await queue.getJobCounts();
    if (ok(last)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`queue counts never matched: ${JSON.stringify(last)}`);
}

async function waitForActive(queue: LabelQueue, id: string, among: WorkerProc[]): Promise<WorkerProc> {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const job = await queue.getJob(id);
    const progress = job?.progress as { done?: number } | undefined;
    if (job && job.processedBy && (progress?.done ?? 0) >= 1 && (await job.getState()) === 'active') {
      const w = among.find((x) => job.processedBy!.endsWith(`:${x.pid}`));
      if (w) return w;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id} never became active`);
}
