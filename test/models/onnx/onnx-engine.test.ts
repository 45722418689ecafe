// The native engine against tfjs on the shared photos: every registered embedder, both the layers
// model the export is made from and the tfjs embedder (graph model) it stands in for.
import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { loadEmbedder, type RgbImage } from '../../../models/embedder.ts';
import { loadOnnxEmbedder } from '../../../models/onnx/onnx-engine.ts';
import { loadLayersModel, readLayersArtifacts } from '../../../models/onnx/layers-source.ts';
import { EMBEDDING_TOLERANCE, tfjsReference, verificationFrames } from '../../../models/onnx/verify.ts';
import { EMBEDDER_IDS } from '../../../models/registry.ts';
import { ErrorCodes, FramewiseError } from '../../../core/errors.ts';
import { IMAGES_DIR, MODELS_DIR } from '../../helpers/real-models.ts';

let cacheDir: string;
let photos: RgbImage[];

beforeAll(async () => {
  await ensureBackend();
  cacheDir = await mkdtemp(join(tmpdir(), 'framewise-onnx-engine-'));
  const v = await verificationFrames(IMAGES_DIR, 224);
  expect(v.inputs).toBe('photos'); // the shared photos must be there, or this compares nothing real
  photos = v.frames;
});
afterAll(() => rm(cacheDir, { recursive: true, force: true }));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const flat = (rows: Float32Array[]) => Float32Array.from(rows.flatMap((r) => [...r]));

describe.each(EMBEDDER_IDS)('%s on onnxruntime-node', (id) => {
  test('embeddings equal tfjs (layers model and tfjs embedder) within 1e-4 on the photos', async () => {
    const before = tf.memory().numTensors;
    const onnx = await loadOnnxEmbedder({ id, modelsDir: MODELS_DIR, cacheDir, imagesDir: IMAGES_DIR, threads: 1, batchSize: 4 });
    try {
      expect(onnx.provenance).toBe('exported');
      const got = await onnx.embed(photos);
      expect(got).toHaveLength(photos.length);
      expect(got[0]).toHaveLength(onnx.dim);

      const layers = await loadLayersModel(await readLayersArtifacts(id, MODELS_DIR));
      const ref = await tfjsReference(layers, photos).finally(() => layers.dispose());
      expect(maxAbsDiff(flat(got), ref.embedding)).toBeLessThan(EMBEDDING_TOLERANCE);

      const tfjs = await loadEmbedder({ id, modelsDir: MODELS_DIR, cacheDir, allowDownload: false });
      try {
        expect(tfjs.dim).toBe(onnx.dim);
        expect(maxAbsDiff(flat(got), flat(await tfjs.embed(photos)))).toBeLessThan(EMBEDDING_TOLERANCE);
        const [top] = await onnx.classify(photos[0]!, 1);
        const [tfTop] = await tfjs.classify(photos[0]!, 1);
        expect(top!.className).toBe(tfTop!.className);
        expect(Math.abs(top!.probability - tfTop!.probability)).toBeLessThan(1e-3);
      } finally {
        tfjs.dispose();
      }
      // Batch boundaries (batchSize 4 over 9 photos) change nothing.
      const single = await onnx.embed([photos[5]!]);
      expect(maxAbsDiff(single[0]!, got[5]!)).toBeLessThan(1e-6);
    } finally {
      onnx.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the cached export', () => {
  test('is reused without tfjs the second time, and the embedder checks its inputs', async () => {
    const id = 'mobilenet_v1_0.25_224';
    const first = await loadOnnxEmbedder({ id, modelsDir: MODELS_DIR, cacheDir, imagesDir: IMAGES_DIR, threads: 1 });
    first.dispose();
    const t0 = performance.now();
    const e = await loadOnnxEmbedder({ id, modelsDir: MODELS_DIR, cacheDir, threads: 2 });
    try {
      expect(e.provenance).toBe('sidecar');
      expect(e.file).toBe(join(cacheDir, 'onnx', `${id}.onnx`));
      expect(performance.now() - t0).toBeLessThan(5_000);
      expect(e.macsPerFrame).toBeGreaterThan(40e6);
      const [v] = await e.embed([photos[0]!]);
      expect(v).toHaveLength(256);
      const wrong = { rgb: new Uint8Array(10 * 10 * 3), width: 10, height: 10 };
      await expect(e.embed([wrong])).rejects.toMatchObject({ code: ErrorCodes.USAGE });
      await expect(e.classify(photos[0]!, 0)).rejects.toMatchObject({ code: ErrorCodes.USAGE });
    } finally {
      e.dispose();
      e.dispose(); // idempotent
    }
    await expect(e.embed([photos[0]!])).rejects.toBeInstanceOf(FramewiseError);
  });

  test('bad config is a usage error before any work', async () => {
    await expect(loadOnnxEmbedder({ id: 'nope', cacheDir })).rejects.toMatchObject({ code: ErrorCodes.USAGE });
    await expect(loadOnnxEmbedder({ threads: 0, cacheDir })).rejects.toMatchObject({ code: ErrorCodes.USAGE });
  });
});
