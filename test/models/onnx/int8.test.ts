// The int8 export (QDQ, calibrated on real frames of the shared clips): its embeddings agree with
// fp32's on the photos within the documented bounds, a file with one wrong scale is refused, a
// cached file from an older quantizer is made again, and the precision choice (and why fp32 was
// kept) is printed. v1 0.25 keeps it to tens of seconds.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ErrorCodes, FramewiseError } from '../../../core/errors.ts';
import { ensureBackend } from '../../../models/backend.ts';
import { loadEmbeddingEngine } from '../../../models/engine-choice.ts';
import { calibrate } from '../../../models/onnx/calibrate.ts';
import { sampleFrames } from '../../../models/onnx/calibration-frames.ts';
import { sidecarPath } from '../../../models/onnx/cache.ts';
import { exportLayersModel } from '../../../models/onnx/export.ts';
import { cosine, INT8_THRESHOLDS } from '../../../models/onnx/int8-agreement.ts';
import { ensureInt8, findInt8, makeInt8, type Int8Sidecar, type ReadyInt8 } from '../../../models/onnx/int8-cache.ts';
import { loadLayersModel, readLayersArtifacts } from '../../../models/onnx/layers-source.ts';
import { DataType, encodeModel } from '../../../models/onnx/proto.ts';
import { foldBatchNorms, QUANTIZER_VERSION, quantizationTargets, quantizeQdq } from '../../../models/onnx/quantize.ts';
import { openSession, runSession, verificationFrames } from '../../../models/onnx/verify.ts';
import { chooseAutoPrecision } from '../../../models/precision.ts';
import { rejection } from '../../helpers/errors.ts';
import { IMAGES_DIR, MODELS_DIR } from '../../helpers/real-models.ts';
import { tmpDir, type TmpDir } from '../../helpers/video.ts';

const ID = 'mobilenet_v1_0.25_224';
const CLIPS = resolve(MODELS_DIR, '..', 'data', 'video', 'labeled', 'ud810_ps7');
let dir: TmpDir;
let cacheDir: string;
let ready: ReadyInt8;

beforeAll(async () => {
  dir = tmpDir('framewise-int8-');
  cacheDir = dir.file('cache');
  await ensureBackend('wasm');
  ready = await makeInt8({ id: ID, modelsDir: MODELS_DIR, cacheDir, imagesDir: IMAGES_DIR, calibrate: [CLIPS], maxFrames: 32 });
}, 300_000);

afterAll(() => dir?.cleanup());

describe('int8 export', () => {
  test('is a QDQ graph, cached next to fp32 with its calibration fingerprint and its figures', () => {
    const s = ready.sidecar;
    expect(ready.path).toBe(resolve(cacheDir, 'onnx', `${ID}.int8-${s.calibration.fingerprint.slice(0, 12)}.onnx`));
    expect(s.precision).toBe('int8');
    expect(s.calibration.frames).toBe(16);
    expect(s.agreement.ok).toBe(true);
    expect(s.agreement.checkFrames).toBe(16); // the other half of the sample, disjoint from calibration
    expect(s.speed.int8Fps).toBeGreaterThan(0);
    const text = new TextDecoder('latin1').decode(ready.bytes);
    expect(text).toContain('QuantizeLinear');
    expect(text).toContain('DequantizeLinear');
  });

  test('int8 embeddings agree with fp32 on the photos within the documented bounds', async () => {
    const { frames, inputs } = await verificationFrames(IMAGES_DIR, 224);
    expect(inputs).toBe('photos');
    const fp32 = await openSession(readFileSync(resolve(cacheDir, 'onnx', `${ID}.onnx`)), 1, 'fp32');
    const int8 = await openSession(ready.bytes, 1, 'int8');
    try {
      const a = await runSession(fp32, frames, 224);
      const b = await runSession(int8, frames, 224);
      const cos = frames.map((_, i) => cosine(a.embedding.subarray(i * 256, (i + 1) * 256), b.embedding.subarray(i * 256, (i + 1) * 256))).sort();
      expect(cos[cos.length >> 1]).toBeGreaterThanOrEqual(INT8_THRESHOLDS.cosineMedian);
      expect(cos[0]).toBeGreaterThanOrEqual(INT8_THRESHOLDS.cosineP5);
      // and not trivially: int8 really computes something different from fp32
      expect(cos[0]).toBeLessThan(0.99999);
    } finally {
      await fp32.release();
      await int8.release();
    }
    expect(ready.sidecar.agreement.top1Agreement).toBeGreaterThanOrEqual(INT8_THRESHOLDS.top1Agreement);
  });

  test('a file with one wrong weight scale is refused with a clear message', async () => {
    const model = await loadLayersModel(await readLayersArtifacts(ID, MODELS_DIR));
    const ex = exportLayersModel(ID, model);
    model.dispose();
    const folded = foldBatchNorms(ex.model);
    const sample = await sampleFrames({ sources: [CLIPS], size: 224, maxFrames: 16 });
    const { ranges, means } = await calibrate({ folded, targets: quantizationTargets(folded), frames: sample.calibration, inputSize: 224 });
    const q = quantizeQdq(folded, { ranges, inputMeans: means });
    // The fifth convolution's per-channel weight scales, 8x too large: a plausible corruption.
    const scale = q.initializers.filter((t) => t.name.endsWith('/W_scale'))[4]!;
    expect(scale.dataType).toBe(DataType.FLOAT);
    const wrong = new Float32Array(scale.rawData.slice().buffer).map((v) => v * 8);
    scale.rawData = new Uint8Array(wrong.buffer);
    const bad = dir.file('corrupt.int8.onnx');
    writeFileSync(bad, encodeModel(q));
    // Its record from the good file does not vouch for these bytes, so agreement is measured again.
    copyFileSync(sidecarPath(ready.path), sidecarPath(bad));
    const err = await rejection(ensureInt8({ id: ID, modelsDir: MODELS_DIR, cacheDir, imagesDir: IMAGES_DIR, file: bad }));
    expect(err).toBeInstanceOf(FramewiseError);
    expect((err as FramewiseError).code).toBe(ErrorCodes.MODEL_INVALID);
    expect((err as Error).message).toMatch(/refusing int8 ONNX file .*corrupt\.int8\.onnx.*median cosine to fp32 0\.\d+ < 0\.985/);
    expect((err as Error).message).toContain('framewise models export-onnx mobilenet_v1_0.25_224 --precision int8');
  }, 120_000);

  test('a cached export made by an older quantizer is not used: found again, it is made anew', async () => {
    // The fixture's file as an older version would have left it: same bytes, a record without the version.
    const old = dir.file('old-cache');
    const path = resolve(old, 'onnx', basename(ready.path));
    mkdirSync(dirname(path), { recursive: true });
    copyFileSync(ready.path, path);
    const { quantizerVersion, ...sidecar } = ready.sidecar;
    expect(quantizerVersion).toBe(QUANTIZER_VERSION);
    writeFileSync(sidecarPath(path), JSON.stringify(sidecar));
    expect(await findInt8(ID, old, MODELS_DIR)).toBeUndefined();
    const lines: string[] = [];
    const again = await ensureInt8({
      id: ID,
      modelsDir: MODELS_DIR,
      cacheDir: old,
      imagesDir: IMAGES_DIR,
      calibrate: [CLIPS],
      maxFrames: 32,
      log: (l) => lines.push(l),
    });
    expect(again.how).toBe('exported');
    expect(again.path).toBe(path);
    expect(again.sidecar.quantizerVersion).toBe(QUANTIZER_VERSION);
    expect(lines.join('\n')).toContain('made by an older exporter or quantizer: making it again');
  }, 120_000);
});

describe('precision choice', () => {
  test('auto: int8 only when verified and measured faster on this CPU; each fallback says why', () => {
    const cpu = 'Test CPU';
    expect(chooseAutoPrecision(ID, undefined, cpu)).toEqual({ precision: 'fp32', reason: expect.stringContaining('no int8 export') });
    expect(chooseAutoPrecision(ID, { ok: true, cpu: 'Other CPU', fp32Fps: 100, int8Fps: 200 }, cpu).reason).toContain('measured on "Other CPU"');
    const slower = chooseAutoPrecision(ID, { ok: true, cpu, fp32Fps: 100, int8Fps: 90 }, cpu);
    expect(slower).toEqual({ precision: 'fp32', reason: expect.stringContaining('0.90x') });
    expect(chooseAutoPrecision(ID, { ok: false, cpu, fp32Fps: 100, int8Fps: 200 }, cpu).precision).toBe('fp32');
    expect(chooseAutoPrecision(ID, { ok: true, cpu, fp32Fps: 100, int8Fps: 200 }, cpu)).toEqual({
      precision: 'int8',
      reason: expect.stringContaining('2.00x'),
    });
  });

  test('the engine prints the choice: auto takes the measured-faster int8, or keeps fp32 and says why', async () => {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const common = { id: ID, modelsDir: MODELS_DIR, cacheDir, workers: 1, isolate: false, log } as const;
    // This CPU's record, made slower than fp32: auto keeps fp32 and prints the figures.
    const path = sidecarPath(ready.path);
    const good = readFileSync(path, 'utf8');
    const s = JSON.parse(good) as Int8Sidecar;
    writeFileSync(path, JSON.stringify({ ...s, speed: { ...s.speed, int8Fps: s.speed.fp32Fps / 2 } }));
    let e = await loadEmbeddingEngine({ ...common, precision: 'auto' });
    expect(e.precision).toBe('fp32');
    await e.close();
    expect(lines.join('\n')).toMatch(/precision fp32 for mobilenet_v1_0\.25_224 \(auto: int8 measured 0\.50x fp32's speed on this CPU/);
    // Faster: auto takes int8.
    writeFileSync(path, JSON.stringify({ ...s, speed: { ...s.speed, int8Fps: s.speed.fp32Fps * 2 } }));
    e = await loadEmbeddingEngine({ ...common, precision: 'auto' });
    try {
      expect(e.precision).toBe('int8');
      expect(e.description).toContain('int8');
      const [v] = await e.embed([{ rgb: new Uint8Array(224 * 224 * 3).fill(128), width: 224, height: 224 }]);
      expect(v!.length).toBe(256);
    } finally {
      await e.close();
      writeFileSync(path, good);
    }
    expect(lines.join('\n')).toMatch(/precision int8 for mobilenet_v1_0\.25_224 \(auto: verified, and 2\.00x fp32's speed/);
    // --precision int8 with the tfjs engine is a usage error, not a silent fp32 run.
    const err = await rejection(loadEmbeddingEngine({ ...common, engine: 'tfjs', precision: 'int8' }));
    expect((err as FramewiseError).code).toBe(ErrorCodes.USAGE);
  }, 120_000);
});
