// The embedding worker pool with real tfjs (wasm) embedders in real worker threads:
// exact equality with a single-thread embedder, order, transfer of pixels, fairness between
// concurrent calls, worker errors and crashes, and no thread left behind.
import * as tf from '@tensorflow/tfjs';
import { readdirSync } from 'node:fs';
import { lastValueFrom, map, pipe, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEmbedder, type Embedder, type RgbImage } from '../../../models/embedder.ts';
import { FACTORIES_MODULE } from '../../../models/pool/factories.ts';
import { createEmbeddingPool, type EmbeddingPool } from '../../../models/pool/pool.ts';
import { decode, decodeThrough } from '../../../pipeline/decode.ts';
import { embed } from '../../../pipeline/embed-stage.ts';
import { ErrorCodes } from '../../../core/errors.ts';
import type { Frame } from '../../../core/types.ts';
import { MODELS_DIR } from '../../helpers/real-models.ts';
import { makeClip, tmpDir, type TmpDir } from '../../helpers/video.ts';
import { EXIT_MARK, THROW_MARK, mark } from './faulty-embedder.ts';
import { rejection } from '../../helpers/errors.ts';

const ID = 'mobilenet_v1_0.25_224';
const FAULTY_MODULE = new URL('./faulty-embedder.ts', import.meta.url).href;
const tfjsFactory = (config: Record<string, unknown> = {}) => ({
  module: FACTORIES_MODULE,
  exportName: 'loadTfjsInWorker',
  config: { id: ID, modelsDir: MODELS_DIR, allowDownload: false, backend: 'wasm', ...config },
});

let dir: TmpDir;
let clip: string;
let single: Embedder;
let pool: EmbeddingPool;
/** The clip's frames, decoded once (each test copies what it hands to the pool: transfer detaches). */
let frames: Frame[];

const copyFrames = <T extends RgbImage>(fs: readonly T[]): T[] => fs.map((f) => ({ ...f, rgb: f.rgb.slice() }));
// Worker threads are OS threads of this process (process.getActiveResourcesInfo() does not list them).
const osThreads = () => readdirSync('/proc/self/task').length;
const linux = process.platform === 'linux';

async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = tmpDir('framewise-pool-');
  clip = await makeClip({ durationSec: 2, fps: 10, width: 320, height: 240, dir: dir.path });
  [single, pool, frames] = await Promise.all([
    loadEmbedder({ id: ID, modelsDir: MODELS_DIR, allowDownload: false, backend: 'wasm' }),
    // Tasks of at most 8 frames: the 32-frame call of the round-robin test is 4 tasks, so the
    // short call gets its turn while the long one still has tasks queued.
    createEmbeddingPool({ size: 2, batchSize: 8, factory: tfjsFactory() }),
    lastValueFrom(decode(clip, { size: 224 }).pipe(toArray())),
  ]);
  expect(frames.length).toBe(20);
});

afterAll(async () => {
  single?.dispose();
  await pool?.close();
  dir?.cleanup();
});

describe('results', () => {
  test('a stream through the pool equals the single-thread embedder exactly, in frame order, with pixels transferred', async () => {
    const reference = await single.embed(copyFrames(frames));
    const before = pool.stats();
    const seen: Frame[] = [];
    const out = await lastValueFrom(
      decodeThrough(
        clip,
        { size: 224 },
        pipe(
          map((f: Frame) => (seen.push(f), f)),
          embed(pool),
        ),
        16,
      ).pipe(toArray()),
    );
    expect(out.map((e) => e.index)).toEqual(frames.map((f) => f.index));
    out.forEach((e, i) => expect(Array.from(e.embedding)).toEqual(Array.from(reference[i]!)));
    // Zero copy: every decoded frame's buffer went to a worker (and is detached here).
    const after = pool.stats();
    expect(after.transferred - before.transferred).toBe(20);
    expect(after.copied - before.copied).toBe(0);
    expect(seen.every((f) => f.rgb.byteLength === 0)).toBe(true);
    // Both workers took part: 8-frame calls are split into two 4-frame tasks.
    expect(after.tasks - before.tasks).toBeGreaterThanOrEqual(2 * Math.ceil(20 / 8));
  });

  test('views into a bigger buffer and repeated frames are copied, and left intact', async () => {
    const big = new Uint8Array(2 * 224 * 224 * 3);
    big.set(frames[3]!.rgb.slice(), 0);
    big.set(frames[4]!.rgb.slice(), 224 * 224 * 3);
    const a = { rgb: big.subarray(0, 224 * 224 * 3), width: 224, height: 224 };
    const b = { rgb: big.subarray(224 * 224 * 3), width: 224, height: 224 };
    const [ra, rb] = await single.embed([a, b]);
    const out = await pool.embed([a, b, a]);
    expect(a.rgb.byteLength).toBe(224 * 224 * 3);
    expect(Array.from(out[0]!)).toEqual(Array.from(ra!));
    expect(Array.from(out[1]!)).toEqual(Array.from(rb!));
    expect(Array.from(out[2]!)).toEqual(Array.from(ra!));
  });

  test('classify runs in a worker and agrees with the single-thread embedder', async () => {
    const expected = await single.classify(frames[0]!, 3);
    const got = await pool.classify(copyFrames([frames[0]!])[0]!, 3);
    expect(got).toEqual(expected);
  });

  test('concurrent calls are served round-robin: a one-frame call does not wait for a long one', async () => {
    const order: string[] = [];
    const long = pool.embed(copyFrames([...frames, ...frames].slice(0, 32))).then(() => order.push('long'));
    const short = pool.embed(copyFrames([frames[0]!])).then(() => order.push('short'));
    await Promise.all([long, short]);
    expect(order).toEqual(['short', 'long']);
  });

  test('bad frames are usage errors before any work; the main thread makes no tensors', async () => {
    const tensors = tf.memory().numTensors;
    // Rejections, not throws: the embed operator chains .then() on the call.
    const wrong = await rejection(pool.embed([{ rgb: new Uint8Array(10), width: 224, height: 224 }]));
    expect(wrong.code).toBe(ErrorCodes.USAGE);
    expect(wrong.message).toMatch(/needs 224x224 rgb24/);
    const f = copyFrames([frames[0]!]);
    await pool.embed(f);
    const again = await rejection(pool.embed(f));
    expect(again.code).toBe(ErrorCodes.USAGE);
    expect(again.message).toMatch(/detached: an earlier embed\(\) on the pool took it/);
    await pool.embed(copyFrames(frames.slice(0, 9)));
    expect(tf.memory().numTensors).toBe(tensors);
  });
});

describe('failures', () => {
  let faulty: EmbeddingPool;
  let exitFlag: string;
  beforeAll(async () => {
    exitFlag = dir.file('exited-once');
    // Copy mode: the pool keeps the pixels, so the task of a crashed worker can be retried.
    faulty = await createEmbeddingPool({
      size: 2,
      transfer: false,
      factory: { module: FAULTY_MODULE, exportName: 'loadFaultyEmbedder', config: { ...tfjsFactory().config, exitFlag } },
    });
  });
  afterAll(() => faulty?.close());

  test('an error thrown in a worker becomes the stream error, with its code and cause chain', async () => {
    const stage = pipe(
      map((f: Frame) => (f.index === 5 ? { ...f, rgb: mark(f.rgb, THROW_MARK) } : f)),
      embed(faulty),
    );
    const err = await rejection(lastValueFrom(decodeThrough(clip, { size: 224 }, stage, 16)));
    expect(err.code).toBe(ErrorCodes.MODEL_INVALID);
    expect(err.message).toBe('planted fault in a marked frame');
    const cause = err.cause as Error;
    expect(cause.stack).toContain('faulty-embedder.ts');
    expect((cause.cause as Error).name).toBe('RangeError');
    expect((cause.cause as Error).message).toBe('the root cause');
    expect(faulty.stats().crashed).toBe(0); // an error is not a crash: the worker lives on
  });

  test('a worker that exits mid-task is replaced, the task retried, and the stream completes with exact results', async () => {
    const marked = copyFrames(frames).map((f) => (f.index === 7 ? { ...f, rgb: mark(f.rgb, EXIT_MARK) } : f));
    const reference = await single.embed(copyFrames(marked));
    const before = faulty.stats();
    const stage = pipe(
      map((f: Frame) => (f.index === 7 ? { ...f, rgb: mark(f.rgb, EXIT_MARK) } : f)),
      embed(faulty),
    );
    const out = await lastValueFrom(decodeThrough(clip, { size: 224 }, stage, 16).pipe(toArray()));
    expect(out.map((e) => e.index)).toEqual(frames.map((f) => f.index));
    out.forEach((e, i) => expect(Array.from(e.embedding)).toEqual(Array.from(reference[i]!)));
    const after = faulty.stats();
    expect(after.crashed - before.crashed).toBe(1);
    expect(after.retried - before.retried).toBe(1);
    expect(after.spawned - before.spawned).toBe(1);
    await until(() => faulty.stats().ready === 2);
  });

  test('a worker terminated from outside is replaced; copied work is retried', async () => {
    const input = copyFrames(frames.slice(0, 8));
    const reference = await single.embed(input);
    const call = faulty.embed(input);
    void faulty.threads()[0]!.terminate(); // its task is in flight
    const out = await call;
    out.forEach((e, i) => expect(Array.from(e)).toEqual(Array.from(reference[i]!)));
    await until(() => faulty.stats().ready === 2);
  });

  test('transferred work of a terminated worker fails clearly; the replaced pool keeps working', async () => {
    const crashedBefore = pool.stats().crashed;
    const call = pool.embed(copyFrames(frames.slice(0, 8)));
    void pool.threads()[1]!.terminate();
    const err = await rejection(call);
    expect(err.code).toBe(ErrorCodes.WORKER_FAILED);
    expect(err.message).toMatch(/embedding worker \d+ died \(exit code \d+\) while embedding frames \d+\.\.\d+ of the call; .*transferred.*replaced/);
    expect(pool.stats().crashed).toBe(crashedBefore + 1);
    await until(() => pool.stats().ready === 2);
    const reference = await single.embed(copyFrames(frames.slice(0, 3)));
    const out = await pool.embed(copyFrames(frames.slice(0, 3)));
    out.forEach((e, i) => expect(Array.from(e)).toEqual(Array.from(reference[i]!)));
  });

  test('a worker that cannot load fails creation with its own error and leaves no thread', async () => {
    const threadsBefore = linux ? osThreads() : 0;
    const err = await rejection(createEmbeddingPool({ size: 2, factory: tfjsFactory({ id: 'mobilenet_nope' }) }));
    expect(err.code).toBe(ErrorCodes.USAGE);
    expect(err.message).toMatch(/unknown embedder "mobilenet_nope"/);
    if (linux) await until(() => osThreads() <= threadsBefore);
    else console.warn('thread count check skipped: needs /proc/self/task (Linux)');
  });
});

describe('shutdown', () => {
  test('unsubscribing stops feeding the pool; close() ends every thread', async () => {
    const threadsBefore = linux ? osThreads() : 0;
    const own = await createEmbeddingPool({ size: 2, factory: tfjsFactory() });
    expect(own.stats().live).toBe(2);
    if (linux) expect(osThreads()).toBeGreaterThanOrEqual(threadsBefore + 2);
    const long = await makeClip({ durationSec: 20, fps: 10, width: 320, height: 240, dir: dir.path });
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      const sub = decodeThrough(long, { size: 224 }, embed(own), 16).subscribe({
        next: () => {
          if (++got === 3) {
            sub.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    // At most the call in flight finishes; nothing more is queued for an abandoned stream.
    await until(() => own.stats().busy === 0);
    const tasks = own.stats().tasks;
    expect(tasks).toBeLessThanOrEqual(Math.ceil(16 / 4) + 2);
    await new Promise((r) => setTimeout(r, 300));
    expect(own.stats().tasks).toBe(tasks);
    await own.close();
    expect(own.stats()).toMatchObject({ live: 0, ready: 0, busy: 0, queued: 0 });
    // Threads end with close(): none of the pool's is left (measured as this process's OS threads).
    if (linux) await until(() => osThreads() <= threadsBefore, 5_000);
    else console.warn('thread count check skipped: needs /proc/self/task (Linux)');
    expect((await rejection(own.embed(copyFrames([frames[0]!])))).message).toMatch(/disposed/);
  });

  test('close() rejects pending calls with E_CANCELLED', async () => {
    const own = await createEmbeddingPool({ size: 1, factory: tfjsFactory() });
    const call = own.embed(copyFrames(frames));
    const closed = own.close();
    expect((await rejection(call)).code).toBe(ErrorCodes.CANCELLED);
    await closed;
    expect(own.stats().live).toBe(0);
  });
});
