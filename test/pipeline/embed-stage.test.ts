import * as tf from '@tensorflow/tfjs';
import { Subject, concat, from, interval, lastValueFrom, map, take, throwError, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEmbedder, type Embedder, type RgbImage } from '../../models/embedder.ts';
import { embed } from '../../pipeline/embed-stage.ts';
import { FramewiseError } from '../../core/errors.ts';
import type { EmbeddedFrame, Frame } from '../../core/types.ts';
import { MODELS_DIR, loadPhotoRgb } from '../helpers/real-models.ts';
import { MOTION_DIM, MotionStream } from '../../models/motion.ts';

const frame = (index: number, size = 2): Frame => ({
  streamId: 's',
  index,
  timestampMs: index * 40,
  width: size,
  height: size,
  rgb: new Uint8Array(size * size * 3).fill(index & 0xff),
});

/** An embedder whose embedding is [first pixel byte, batch size], with a random delay per call. */
function fakeEmbedder(opts: { failOnCall?: number } = {}) {
  const batches: number[] = [];
  const e: Embedder & { batches: number[]; inFlight: number; maxInFlight: number } = {
    id: 'fake',
    dim: 2,
    inputSize: 2,
    batches,
    inFlight: 0,
    maxInFlight: 0,
    async embed(frames: readonly RgbImage[]) {
      batches.push(frames.length);
      e.inFlight++;
      e.maxInFlight = Math.max(e.maxInFlight, e.inFlight);
      await new Promise((r) => setTimeout(r, Math.random() * 5));
      e.inFlight--;
      if (opts.failOnCall === batches.length) throw new Error('model exploded');
      return frames.map((f) => Float32Array.of(f.rgb[0], frames.length));
    },
    async classify() {
      return [];
    },
    dispose() {},
  };
  return e;
}

describe('embed operator (fake embedder)', () => {
  test('every frame once, in order, with its identity; batches of at most batchSize, one call at a time', async () => {
    const fake = fakeEmbedder();
    const out = await lastValueFrom(from(Array.from({ length: 50 }, (_, i) => frame(i))).pipe(embed(fake, { batchSize: 4, concurrency: 1 }), toArray()));
    expect(out.map((f) => f.index)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(out.map((f) => f.embedding[0])).toEqual(out.map((f) => f.index & 0xff));
    expect(out[7]).toMatchObject({ streamId: 's', timestampMs: 280 });
    expect(Math.max(...fake.batches)).toBe(4);
    expect(fake.batches.reduce((a, b) => a + b, 0)).toBe(50);
    expect(fake.maxInFlight).toBe(1);
    // A synchronous source arrives all at once: after the first frame, batches are full.
    expect(fake.batches.slice(1, -1).every((b) => b === 4)).toBe(true);
  });

  test('with concurrency, calls overlap yet results come out in frame order, and extra calls are full batches', async () => {
    for (const concurrency of [2, 3]) {
      // Random delays make later calls finish first now and then.
      const fake = fakeEmbedder();
      const out = await lastValueFrom(from(Array.from({ length: 200 }, (_, i) => frame(i))).pipe(embed(fake, { batchSize: 4, concurrency }), toArray()));
      expect(out.map((f) => f.index)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(out.map((f) => f.embedding[0])).toEqual(out.map((f) => f.index & 0xff));
      expect(fake.maxInFlight).toBe(concurrency);
      expect(fake.batches.reduce((a, b) => a + b, 0)).toBe(200);
      // Only the first call (nothing else in flight) goes out short.
      expect(fake.batches.slice(1, -1).every((b) => b === 4)).toBe(true);
    }
  });

  test('a slow source is not held back to fill a batch', async () => {
    const fake = fakeEmbedder();
    const out = await lastValueFrom(interval(15).pipe(take(5), map(frame), embed(fake, { batchSize: 8 }), toArray()));
    expect(out.map((f) => f.index)).toEqual([0, 1, 2, 3, 4]);
    expect(fake.batches.every((b) => b === 1)).toBe(true);
    // The second call slot is for full batches: a trickle never opens it.
    expect(fake.maxInFlight).toBe(1);
  });

  test('a source error arrives after the frames received before it are embedded', async () => {
    const fake = fakeEmbedder();
    const seen: EmbeddedFrame[] = [];
    const source = concat(
      from([frame(0), frame(1), frame(2)]),
      throwError(() => new FramewiseError('E_DECODE_FAILED', 'truncated')),
    );
    const err = await new Promise<unknown>((resolve) =>
      source.pipe(embed(fake, { batchSize: 2 })).subscribe({ next: (f) => seen.push(f), error: resolve, complete: () => resolve('completed') }),
    );
    expect((err as FramewiseError).code).toBe('E_DECODE_FAILED');
    expect(seen.map((f) => f.index)).toEqual([0, 1, 2]);
  });

  test('an embedder error ends the stream with that error and stops embedding', async () => {
    const fake = fakeEmbedder({ failOnCall: 2 });
    const seen: number[] = [];
    const err = await new Promise<unknown>((resolve) =>
      from(Array.from({ length: 20 }, (_, i) => frame(i)))
        .pipe(embed(fake, { batchSize: 3, concurrency: 1 }))
        .subscribe({ next: (f) => seen.push(f.index), error: resolve }),
    );
    expect((err as Error).message).toBe('model exploded');
    expect(seen).toEqual([0]); // batch 1 = [0], batch 2 = [1, 2, 3] failed
    await new Promise((r) => setTimeout(r, 30));
    expect(fake.batches.length).toBe(2);
  });

  test('unsubscribing drops waiting frames and makes no further calls', async () => {
    const fake = fakeEmbedder();
    const input = new Subject<Frame>();
    const seen: number[] = [];
    const sub = input.pipe(embed(fake, { batchSize: 2 })).subscribe((f) => seen.push(f.index));
    for (let i = 0; i < 10; i++) input.next(frame(i));
    sub.unsubscribe();
    expect(input.observed).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    expect(fake.batches).toEqual([1, 2]); // [0], then the first full batch [1, 2]; both slots taken
    expect(seen).toEqual([]);
  });

  test("with the motion stream: each stream's own motion after its embedding, computed before the embedder takes the pixels", async () => {
    const fake = fakeEmbedder();
    const detaching: Embedder = {
      ...fake,
      // As a worker pool does: the frames' pixels are gone once handed over.
      embed: (frames) => fake.embed(frames).then((r) => (frames.forEach((f) => ((f as { rgb: Uint8Array }).rgb = new Uint8Array(0))), r)),
    };
    const bright = (streamId: string, index: number): Frame => ({ ...frame(index, 8), streamId, rgb: new Uint8Array(8 * 8 * 3).fill((index * 40) & 0xff) });
    // Two streams interleaved: a's frames change brightness every frame, b's never.
    const frames = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? bright('a', i / 2) : { ...frame(0, 8), streamId: 'b', index: (i - 1) / 2 }));
    const expected = { a: new MotionStream(), b: new MotionStream() };
    const want = frames.map((f) => expected[f.streamId as 'a' | 'b'].next({ ...f, rgb: f.rgb.slice() }));
    const out = await lastValueFrom(from(frames).pipe(embed(detaching, { batchSize: 3, features: 'appearance+motion' }), toArray()));
    expect(out.every((f) => f.embedding.length === 2 + MOTION_DIM)).toBe(true);
    out.forEach((f, i) => expect(Array.from(f.embedding.subarray(2))).toEqual(Array.from(want[i]!)));
    expect(out.filter((f) => f.streamId === 'a' && f.index > 0).every((f) => f.embedding[2 + MOTION_DIM - 3]! > 0)).toBe(true);
    expect(out.filter((f) => f.streamId === 'b').every((f) => Math.max(...f.embedding.subarray(2)) === 0)).toBe(true);
  });

  test('batchSize and concurrency are range-checked', () => {
    for (const b of [0, -1, 1.5, 5000]) expect(() => embed(fakeEmbedder(), { batchSize: b })).toThrow(/batchSize/);
    for (const c of [0, 2.5, 65]) expect(() => embed(fakeEmbedder(), { concurrency: c })).toThrow(/concurrency/);
  });
});

describe('embed operator (real MobileNet)', () => {
  let real: Embedder;
  beforeAll(async () => {
    real = await loadEmbedder({ id: 'mobilenet_v1_0.25_224', modelsDir: MODELS_DIR, allowDownload: false, batchSize: 3 });
  });
  afterAll(() => real?.dispose());

  test('gives the same embeddings as direct calls, in order, and leaks no tensor', async () => {
    const photos = await Promise.all(['cat.bmp', 'grace_hopper.bmp', 'hot_dog.jpg', 'owl.jpg', 'parrot.jpg'].map((p) => loadPhotoRgb(p)));
    const frames: Frame[] = photos.map((p, i) => ({ streamId: 'r', index: i, timestampMs: i * 100, ...p }));
    const direct: Float32Array[] = [];
    for (const p of photos) direct.push((await real.embed([p]))[0]);
    const before = tf.memory().numTensors;
    const out = await lastValueFrom(from(frames).pipe(embed(real, { batchSize: 2 }), toArray()));
    expect(tf.memory().numTensors).toBe(before);
    expect(out.map((f) => f.index)).toEqual([0, 1, 2, 3, 4]);
    out.forEach((f, i) => {
      expect(f.embedding.length).toBe(256);
      let maxDiff = 0;
      for (let j = 0; j < 256; j++) maxDiff = Math.max(maxDiff, Math.abs(f.embedding[j] - direct[i][j]));
      expect(maxDiff).toBeLessThan(1e-4);
    });
  });
});
