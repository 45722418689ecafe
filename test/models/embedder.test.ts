import * as tf from '@tensorflow/tfjs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEmbedder, resolveEmbedderConfig, type Embedder, type EmbedderConfig, type RgbImage } from '../../models/embedder.ts';
import { EMBEDDERS } from '../../models/registry.ts';
import { resolveWeights, type FetchLike } from '../../models/weights.ts';
import { FramewiseError } from '../../core/errors.ts';
import { MODELS_DIR, loadPhotoRgb } from '../helpers/real-models.ts';
import { readFile } from 'node:fs/promises';
import { rejection } from '../helpers/errors.ts';

const PHOTOS = ['grace_hopper.bmp', 'cat.bmp', 'hot_dog.jpg', 'parrot.jpg', 'sunflower.bmp'] as const;
const photos: Record<string, RgbImage> = {};
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'framewise-embedder-'));
  for (const p of PHOTOS) photos[p] = await loadPhotoRgb(p);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('mobilenet_v2_1.0_224 (the default)', () => {
  let net: Embedder;
  let tensorsBeforeLoad: number;
  const config: EmbedderConfig = Object.freeze({ modelsDir: MODELS_DIR, allowDownload: false, batchSize: 4 });
  const snapshot = JSON.stringify(config);

  beforeAll(async () => {
    await tf.ready().catch(() => {});
    tensorsBeforeLoad = tf.memory().numTensors;
    net = await loadEmbedder(config); // frozen: any write to the caller's config would throw
  });
  afterAll(() => net?.dispose());

  test('loads the default embedder without mutating the config', () => {
    expect(JSON.stringify(config)).toBe(snapshot);
    expect([net.id, net.dim, net.inputSize]).toEqual(['mobilenet_v2_1.0_224', 1280, 224]);
  });

  test('ImageNet top-1: grace_hopper is a military uniform, cat.bmp an Egyptian cat or tabby, hot_dog a hotdog', async () => {
    const top = async (p: string) => (await net.classify(photos[p], 5))[0];
    expect((await top('grace_hopper.bmp')).className).toBe('military uniform');
    expect(['Egyptian cat', 'tabby, tabby cat']).toContain((await top('cat.bmp')).className);
    expect((await top('hot_dog.jpg')).className).toBe('hotdog, hot dog, red hot');
    const five = await net.classify(photos['parrot.jpg'], 5);
    expect(five.length).toBe(5);
    expect(five[0].probability).toBeGreaterThanOrEqual(five[4].probability);
  });

  test('embeddings: one per frame, 1280 finite values, distinct per photo; batching changes nothing', async () => {
    const frames = PHOTOS.map((p) => photos[p]);
    const batched = await net.embed(frames); // batchSize 4: calls of 4 + 1
    expect(batched.length).toBe(frames.length);
    for (const e of batched) {
      expect(e).toBeInstanceOf(Float32Array);
      expect(e.length).toBe(1280);
      expect(e.every(Number.isFinite)).toBe(true);
      expect(e.buffer.byteLength).toBe(1280 * 4); // owns its buffer
    }
    expect(maxAbsDiff(batched[0], batched[1])).toBeGreaterThan(0.1);
    for (const [i, f] of frames.entries()) expect(maxAbsDiff((await net.embed([f]))[0], batched[i])).toBeLessThan(1e-4);
    expect(await net.embed([])).toEqual([]);
  });

  test('no tensor leak over 100 embed calls and 5 classify calls', async () => {
    await net.embed([photos['cat.bmp']]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) await net.embed([photos[PHOTOS[i % PHOTOS.length]]]);
    for (let i = 0; i < 5; i++) await net.classify(photos['cat.bmp']);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('frames of the wrong size are E_USAGE and leak nothing', async () => {
    const before = tf.memory().numTensors;
    const small = { rgb: new Uint8Array(10 * 10 * 3), width: 10, height: 10 };
    const err = await rejection(net.embed([photos['cat.bmp'], small]));
    expect(err.code).toBe('E_USAGE');
    expect(err.message).toMatch(/frame 1 is 10x10.*224x224/);
    expect((await rejection(net.embed([{ ...photos['cat.bmp'], rgb: photos['cat.bmp'].rgb.subarray(1) }]))).code).toBe('E_USAGE');
    expect((await rejection(net.classify(photos['cat.bmp'], 0))).code).toBe('E_USAGE');
    expect(tf.memory().numTensors).toBe(before);
  });

  test('dispose frees every weight; later calls are E_USAGE', async () => {
    const other = await loadEmbedder({ ...config, id: 'mobilenet_v2_1.0_224' });
    const loaded = tf.memory().numTensors;
    other.dispose();
    other.dispose();
    expect(tf.memory().numTensors).toBeLessThan(loaded);
    expect(tf.memory().numTensors).toBe(loaded - (loaded - tensorsBeforeLoad) / 2);
    expect((await rejection(other.embed([photos['cat.bmp']]))).code).toBe('E_USAGE');
  });
});

describe.each([
  ['mobilenet_v1_1.0_224', 1024],
  ['mobilenet_v1_0.25_224', 256],
])('%s', (id, dim) => {
  let net: Embedder;
  beforeAll(async () => {
    net = await loadEmbedder({ id, modelsDir: MODELS_DIR, allowDownload: false });
  });
  afterAll(() => net?.dispose());

  test(`${dim}-d finite embeddings and sane ImageNet classes`, async () => {
    expect(net.dim).toBe(EMBEDDERS[id].dim);
    const embs = await net.embed(PHOTOS.map((p) => photos[p]));
    for (const e of embs) {
      expect(e.length).toBe(dim);
      expect(e.every(Number.isFinite)).toBe(true);
    }
    expect((await net.classify(photos['grace_hopper.bmp'], 5)).map((c) => c.className)).toContain('military uniform');
    expect((await net.classify(photos['hot_dog.jpg'], 1))[0].className).toBe('hotdog, hot dog, red hot');
  });
});

describe('loading errors and weight sources', () => {
  test('config is range-checked before anything loads', () => {
    const code = (c: EmbedderConfig) => {
      try {
        resolveEmbedderConfig(c);
        return 'ok';
      } catch (err) {
        return (err as FramewiseError).code;
      }
    };
    expect(code({ id: 'resnet50' })).toBe('E_USAGE');
    expect(code({ batchSize: 0 })).toBe('E_USAGE');
    expect(code({ batchSize: 2.5 })).toBe('E_USAGE');
    expect(code({ backend: 'tpu' as 'cpu' })).toBe('E_USAGE');
    expect(code({})).toBe('ok');
    expect(resolveEmbedderConfig({}).id).toBe('mobilenet_v2_1.0_224');
  });

  test('no weights anywhere: E_MODEL_NOT_FOUND naming the folders', async () => {
    const empty = join(tmp, 'empty-models');
    await mkdir(empty);
    const err = await rejection(loadEmbedder({ id: 'mobilenet_v1_0.25_224', modelsDir: empty, cacheDir: join(tmp, 'no-cache'), allowDownload: false }));
    expect(err.code).toBe('E_MODEL_NOT_FOUND');
    expect(err.message).toContain(join(empty, 'mobilenet_v1_0.25_224'));
  });

  test('weights of another model under an id: E_MODEL_INVALID naming the folder, nothing leaked', async () => {
    const dir = join(tmp, 'mixed');
    await mkdir(dir);
    await symlink(join(MODELS_DIR, 'mobilenet_v1_1.0_224'), join(dir, 'mobilenet_v1_0.25_224'));
    const before = tf.memory().numTensors;
    const err = await rejection(loadEmbedder({ id: 'mobilenet_v1_0.25_224', modelsDir: dir, allowDownload: false }));
    expect(err.code).toBe('E_MODEL_INVALID');
    expect(err.message).toContain(join(dir, 'mobilenet_v1_0.25_224'));
    expect(err.message).toMatch(/1024/);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('TF-Hub-style weights downloaded into the cache (input range [0, 1]) embed like the local copy', async () => {
    const id = 'mobilenet_v1_0.25_224';
    const shared = join(MODELS_DIR, id);
    const base = EMBEDDERS[id].officialUrl + '/';
    const hub: FetchLike = async (url) => {
      const name = url.slice(base.length).replace('?tfjs-format=file', '');
      const b = await readFile(join(shared, name === 'model.json' ? 'model-input01.json' : name));
      return { ok: true, status: 200, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer };
    };
    const cacheDir = join(tmp, 'cache');
    await resolveWeights(id, { cacheDir, fetch: hub });
    const empty = join(tmp, 'no-models');
    await mkdir(empty, { recursive: true });
    const fromCache = await loadEmbedder({ id, modelsDir: empty, cacheDir, allowDownload: false });
    const local = await loadEmbedder({ id, modelsDir: MODELS_DIR, allowDownload: false });
    try {
      const [a, b] = [await fromCache.embed([photos['parrot.jpg']]), await local.embed([photos['parrot.jpg']])];
      expect(maxAbsDiff(a[0], b[0])).toBeLessThan(1e-4);
    } finally {
      fromCache.dispose();
      local.dispose();
    }
  });
});
