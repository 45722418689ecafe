// A file that is not a faithful export of the requested embedder is refused (MODEL_INVALID) with a
// message that says why; the cache redoes what is merely stale and never trusts changed bytes.
import * as tf from '@tensorflow/tfjs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { ensureOnnx, onnxCachePath, sidecarPath, type Sidecar } from '../../../models/onnx/cache.ts';
import { loadOnnxEmbedder } from '../../../models/onnx/onnx-engine.ts';
import { exportLayersModel } from '../../../models/onnx/export.ts';
import { loadLayersModel, readLayersArtifacts } from '../../../models/onnx/layers-source.ts';
import { verificationFrames } from '../../../models/onnx/verify.ts';
import { ErrorCodes, FramewiseError } from '../../../core/errors.ts';
import { IMAGES_DIR, MODELS_DIR } from '../../helpers/real-models.ts';

const SMALL = 'mobilenet_v1_0.25_224';
const V2 = 'mobilenet_v2_1.0_224';
let dir: string;
let cacheDir: string;
const base = () => ({ modelsDir: MODELS_DIR, imagesDir: IMAGES_DIR, cacheDir, beforeTfjs: () => ensureBackend().then(() => {}) });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'framewise-onnx-cache-'));
  cacheDir = join(dir, 'cache');
  const first = await ensureOnnx({ id: SMALL, ...base() });
  expect(first.how).toBe('exported');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function refusal(p: Promise<unknown>): Promise<FramewiseError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FramewiseError);
    expect((err as FramewiseError).code).toBe(ErrorCodes.MODEL_INVALID);
    return err as FramewiseError;
  }
  throw new Error('expected the file to be refused');
}

describe('refusing files', () => {
  test('a corrupt file (truncated export) is refused, naming the file', async () => {
    const good = await readFile(onnxCachePath(SMALL, cacheDir));
    const bad = join(dir, 'truncated.onnx');
    await writeFile(bad, good.subarray(0, good.length >> 1));
    const err = await refusal(loadOnnxEmbedder({ id: SMALL, file: bad, ...base(), threads: 1 }));
    expect(err.message).toContain(bad);
    const junk = join(dir, 'junk.onnx');
    await writeFile(junk, 'not a model at all');
    await refusal(ensureOnnx({ id: SMALL, file: junk, ...base() }));
  });

  test("another embedder's export (v1 0.25 for the v2 id) is refused, in the file and in the cache", async () => {
    const err = await refusal(ensureOnnx({ id: V2, file: onnxCachePath(SMALL, cacheDir), ...base() }));
    expect(err.message).toMatch(/export of "mobilenet_v1_0\.25_224", not "mobilenet_v2_1\.0_224"/);
    // Planted in the cache with its own sidecar: the sidecar speaks for another id, so it is checked and refused.
    const planted = onnxCachePath(V2, cacheDir);
    await mkdir(join(cacheDir, 'onnx'), { recursive: true });
    await copyFile(onnxCachePath(SMALL, cacheDir), planted);
    await copyFile(sidecarPath(onnxCachePath(SMALL, cacheDir)), sidecarPath(planted));
    await refusal(ensureOnnx({ id: V2, ...base() }));
    await rm(planted);
    await rm(sidecarPath(planted));
  });

  test('an export of perturbed weights (one kernel off by 0.05) is refused on the numbers', async () => {
    await ensureBackend();
    const before = tf.memory().numTensors;
    const model = await loadLayersModel(await readLayersArtifacts(SMALL, MODELS_DIR));
    let bytes: Uint8Array;
    try {
      const layer = model.getLayer('conv_pw_5');
      const [k] = layer.getWeights();
      const shifted = tf.tidy(() => k!.add(0.05));
      layer.setWeights([shifted]);
      shifted.dispose();
      bytes = exportLayersModel(SMALL, model).bytes;
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    const file = join(dir, 'perturbed.onnx');
    await writeFile(file, bytes);
    const err = await refusal(ensureOnnx({ id: SMALL, file, ...base() }));
    expect(err.message).toMatch(/embeddings differ from tfjs by up to [0-9.e+-]+ \(tolerance 0.0001\)/);
  });

  test('a cached file changed after verification is checked again and refused', async () => {
    const path = onnxCachePath(SMALL, cacheDir);
    const good = await readFile(path);
    const changed = Buffer.from(good);
    // Flip bytes deep inside the last initializer (the conv_preds kernel data): still valid protobuf.
    for (let i = changed.length - 2000; i < changed.length - 1000; i++) changed[i] = changed[i]! ^ 0x40;
    await writeFile(path, changed);
    try {
      await refusal(ensureOnnx({ id: SMALL, ...base() }));
    } finally {
      await writeFile(path, good);
    }
    expect((await ensureOnnx({ id: SMALL, ...base() })).how).toBe('sidecar');
  });
});

describe('the cache', () => {
  test('a stale record (other source weights) makes a fresh export; a lost record makes a re-verification', async () => {
    const path = onnxCachePath(SMALL, cacheDir);
    const record = JSON.parse(await readFile(sidecarPath(path), 'utf8')) as Sidecar;
    await writeFile(sidecarPath(path), JSON.stringify({ ...record, sourceSha256: '0'.repeat(64) }));
    expect((await ensureOnnx({ id: SMALL, ...base() })).how).toBe('exported');
    await rm(sidecarPath(path));
    const again = await ensureOnnx({ id: SMALL, ...base() });
    expect(again.how).toBe('verified');
    expect(again.sidecar.verification.maxAbsDiff).toBeLessThan(1e-4);
    expect(again.sidecar.dim).toBe(256);
    expect((await ensureOnnx({ id: SMALL, ...base() })).how).toBe('sidecar');
  });

  test('without the photos, verification runs on synthetic frames (and still passes a good export)', async () => {
    const none = await verificationFrames(join(dir, 'no-photos-here'), 224);
    expect(none.inputs).toBe('synthetic');
    expect(new Set(none.frames[0]!.rgb).size).toBeGreaterThan(100); // not a flat image
    const file = join(dir, 'copy.onnx');
    await copyFile(onnxCachePath(SMALL, cacheDir), file);
    const r = await ensureOnnx({ id: SMALL, file, ...base(), imagesDir: join(dir, 'no-photos-here') });
    expect(r.how).toBe('verified');
    expect(r.sidecar.verification).toMatchObject({ ok: true, inputs: 'synthetic', frames: 4 });
  });

  test('a missing explicit file is MODEL_NOT_FOUND', async () => {
    await expect(ensureOnnx({ id: SMALL, file: join(dir, 'absent.onnx'), ...base() })).rejects.toMatchObject({ code: ErrorCodes.MODEL_NOT_FOUND });
  });
});
