// The per-bundle label check of int8 embeddings: measured on a bundle's first use with an int8
// file, cached by (bundle bytes, int8 bytes) in the cache folder, printed, and enforced by
// openModel: below the threshold `int8` is refused (E_MODEL_INVALID, with the figures and the way
// back to fp32) and `auto` falls back to fp32 saying why. v1 0.25 and the shared test bundle keep
// it to tens of seconds.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ErrorCodes, FramewiseError } from '../../../core/errors.ts';
import { ensureBackend } from '../../../models/backend.ts';
import { sidecarPath } from '../../../models/onnx/cache.ts';
import { makeInt8, type Int8Sidecar, type ReadyInt8 } from '../../../models/onnx/int8-cache.ts';
import { assertLabelAgreement, bundleSha256, int8LabelAgreement, labelCheckPath } from '../../../models/onnx/int8-label-check.ts';
import { openModel } from '../../../models/open-model.ts';
import { loadBundle } from '../../../models/recurrent/bundle.ts';
import { sha256 } from '../../../models/onnx/cache.ts';
import { rejection } from '../../helpers/errors.ts';
import { IMAGES_DIR, MODELS_DIR } from '../../helpers/real-models.ts';
import { trainedBundle, TEST_EMBEDDER, type TrainedBundleFixture } from '../../helpers/trained-bundle.ts';
import { tmpDir, type TmpDir } from '../../helpers/video.ts';

const CLIPS = resolve(MODELS_DIR, '..', 'data', 'video', 'labeled', 'ud810_ps7');
let dir: TmpDir;
let cacheDir: string;
let ready: ReadyInt8;
let fixture: TrainedBundleFixture;

beforeAll(async () => {
  dir = tmpDir('framewise-int8-labels-');
  cacheDir = dir.file('cache');
  await ensureBackend('wasm');
  fixture = await trainedBundle();
  ready = await makeInt8({ id: TEST_EMBEDDER, modelsDir: MODELS_DIR, cacheDir, imagesDir: IMAGES_DIR, calibrate: [CLIPS], maxFrames: 32 });
}, 600_000);

afterAll(() => dir?.cleanup());

describe('int8 label agreement per bundle', () => {
  test('measured on first use from the videos given, cached by bundle and int8 bytes, then read back', async () => {
    const { head, meta } = await loadBundle(fixture.bundle);
    try {
      const o = {
        bundleDir: fixture.bundle,
        head,
        meta,
        int8File: ready.path,
        sources: [fixture.data],
        modelsDir: MODELS_DIR,
        cacheDir,
        clips: 3,
        framesPerClip: 24,
      };
      const first = await int8LabelAgreement(o);
      expect(first.cached).toBe(false);
      expect(first.frames).toBe(3 * 24);
      expect(first.clips).toHaveLength(3);
      expect(first.agreement).toBeGreaterThanOrEqual(0.9);
      expect(first.agreement).toBeLessThanOrEqual(1);
      const file = labelCheckPath(cacheDir, await bundleSha256(fixture.bundle), sha256(readFileSync(ready.path)));
      expect(first.file).toBe(file);
      expect(existsSync(file)).toBe(true);
      const second = await int8LabelAgreement(o);
      expect(second.cached).toBe(true);
      expect(second.agreement).toBe(first.agreement);
      // Below a threshold: E_MODEL_INVALID with the figures and the way back to fp32.
      let err: unknown;
      try {
        assertLabelAgreement(first, fixture.bundle, 1.01);
      } catch (e) {
        err = e;
      }
      expect((err as FramewiseError).code).toBe(ErrorCodes.MODEL_INVALID);
      expect((err as Error).message).toMatch(/labels equal fp32's on \d+\.\d% of 72 frames .* below 101\.0%; run it with --precision fp32/);
    } finally {
      head.dispose();
    }
  }, 300_000);

  test('openModel: int8 refused below the threshold; auto falls back to fp32 and says why; the figure is printed', async () => {
    const lines: string[] = [];
    const common = {
      bundle: fixture.bundle,
      modelsDir: MODELS_DIR,
      cacheDir,
      workers: 1,
      calibrationInputs: [fixture.data],
      onProgress: (l: string) => lines.push(l),
    };
    const err = await rejection(openModel({ ...common, precision: 'int8', int8MinLabelAgreement: 1.01 }));
    expect(err).toBeInstanceOf(FramewiseError);
    expect((err as FramewiseError).code).toBe(ErrorCodes.MODEL_INVALID);
    expect((err as Error).message).toMatch(/refusing int8 embeddings for bundle .*: its labels equal fp32's on \d+\.\d% of \d+ frames/);
    expect(lines.join('\n')).toMatch(/int8 label check of bundle .*: labels equal to fp32's on \d+\.\d% of \d+ frames/);

    // auto takes this int8 export only when its record says it is faster here: make it say so.
    const path = sidecarPath(ready.path);
    const good = readFileSync(path, 'utf8');
    const s = JSON.parse(good) as Int8Sidecar;
    writeFileSync(path, JSON.stringify({ ...s, speed: { ...s.speed, int8Fps: s.speed.fp32Fps * 2 } }));
    try {
      lines.length = 0;
      const m = await openModel({ ...common, precision: 'auto', int8MinLabelAgreement: 1.01 });
      try {
        expect((m.embedder as { precision?: string }).precision).toBe('fp32');
      } finally {
        m.dispose();
      }
      expect(lines.join('\n')).toMatch(/int8 label check of bundle .*, cached;/);
      expect(lines.join('\n')).toMatch(/precision fp32 for mobilenet_v1_0\.25_224 \(auto: refusing int8 embeddings for bundle /);
      // At the default threshold the measured (cached) figure passes and int8 is kept.
      const ok = await openModel({ ...common, precision: 'int8' });
      try {
        expect((ok.embedder as { precision?: string }).precision).toBe('int8');
      } finally {
        ok.dispose();
      }
    } finally {
      writeFileSync(path, good);
    }
  }, 300_000);
});
