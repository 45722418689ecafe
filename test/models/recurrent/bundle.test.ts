import * as tf from '@tensorflow/tfjs';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { BUNDLE_FORMAT_VERSION, loadBundle, saveBundle, type BundleInfo } from '../../../models/recurrent/bundle.ts';
import { createHead, type HeadOptions } from '../../../models/recurrent/head.ts';
import { SeededRandom } from '../../../core/seeded-random.ts';
import { ErrorCodes } from '../../../core/errors.ts';
import { from, lastValueFrom, toArray } from 'rxjs';
import { label } from '../../../pipeline/label-stage.ts';
import { unknownRuleOf } from '../../../models/unknown-rule.ts';

let root: string;
beforeAll(async () => {
  await ensureBackend();
  root = await mkdtemp(join(tmpdir(), 'framewise-bundle-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const D = 16,
  C = 3;
const info: BundleInfo = {
  classes: ['idle', 'wave', 'clap'],
  embedderId: 'mobilenet_v1_0.25_224', // a known id; the head's 16-d input is this test's own
  fps: 10,
  crop: 'center',
  training: { chunk: 8 },
  dataset: { clips: 2 },
  metrics: { accuracy: 0.5 },
};
function sequence(n: number): Float32Array[] {
  const rng = new SeededRandom(3);
  return Array.from({ length: n }, () => Float32Array.from({ length: D }, () => rng.normal()));
}
function maxDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let d = 0;
  a.forEach((p, t) => Array.from(p).forEach((v, k) => (d = Math.max(d, Math.abs(v - b[t]![k]!)))));
  return d;
}

/** Stock loading: our own minimal file IOHandler, nothing from bundle.ts. */
async function stockLoad(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const bins = await Promise.all(manifest.flatMap((g) => g.paths).map((p) => readFile(join(dir, p))));
    const data = tf.io.CompositeArrayBuffer.join(bins.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer));
    return [manifest.flatMap((g) => g.weights), data];
  });
  return tf.loadLayersModel({ load: async () => artifacts });
}

const variants: [string, Partial<HeadOptions>][] = [
  ['lstm', { cell: 'lstm', layers: 1 }],
  ['lstm 2 layers + projection', { cell: 'lstm', layers: 2, projection: 8 }],
  ['gru 2 layers', { cell: 'gru', layers: 2 }],
  ['frame-by-frame', { cell: 'none', layers: 1, projection: 8 }],
];

describe('model bundle', () => {
  test.each(variants)('%s: save/load round trip is identical and stock tf.loadLayersModel agrees', async (name, opts) => {
    const head = createHead({ inputDim: D, classes: C, hidden: 6, seed: 11, dropout: 0.2, ...opts });
    // Move the weights away from their init so a loader that re-initialises would be caught.
    head.setWeights(head.getWeights().map((w) => ({ ...w, values: w.values.map((v, i) => v + 0.05 * Math.sin(i)) })));
    const dir = join(root, name.replace(/\W+/g, '-'));
    const seq = sequence(25);
    const expected = head.predict(seq, 4);
    const saved = await saveBundle(dir, head, info);
    expect(saved.embeddingDim).toBe(D);

    const before = tf.memory().numTensors;
    const { head: loaded, meta } = await loadBundle(dir);
    expect(meta).toMatchObject({
      ...info,
      formatVersion: BUNDLE_FORMAT_VERSION,
      features: 'appearance',
      embeddingDim: D,
      hidden: 6,
      cell: opts.cell,
      dropout: 0.2,
    });
    expect(loaded.spec).toEqual(head.spec);
    expect(maxDiff(loaded.predict(seq, 7), expected)).toBe(0);
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);

    const model = await stockLoad(dir);
    const stock = tf.tidy(() => {
      const x = tf.tensor3d(Float32Array.from(seq.flatMap((f) => Array.from(f))), [1, seq.length, D]);
      return (model.predict(x) as tf.Tensor).arraySync() as number[][][];
    });
    expect(maxDiff(stock[0]!, expected)).toBeLessThan(1e-4);
    model.dispose();
    head.dispose();
  });

  describe('bad bundles fail with E_MODEL_INVALID', () => {
    let dir: string;
    beforeAll(async () => {
      const head = createHead({ inputDim: D, classes: C, hidden: 6 });
      dir = join(root, 'good');
      await saveBundle(dir, head, info);
      head.dispose();
    });
    async function broken(name: string, edit: (d: string) => Promise<void>): Promise<string> {
      const d = join(root, name);
      await rm(d, { recursive: true, force: true });
      const { cp } = await import('node:fs/promises');
      await cp(dir, d, { recursive: true });
      await edit(d);
      return d;
    }
    const expectInvalid = async (d: string, message: RegExp) =>
      expect(loadBundle(d)).rejects.toMatchObject({ code: ErrorCodes.MODEL_INVALID, message: expect.stringMatching(message) });

    test('missing folder or files', async () => {
      await expectInvalid(join(root, 'nope'), /framewise\.json/);
      await expectInvalid(await broken('no-weights', (d) => unlink(join(d, 'weights.bin'))), /weights\.bin/);
      await expectInvalid(await broken('no-model', (d) => unlink(join(d, 'model.json'))), /model\.json/);
    });
    test('corrupt json and truncated weights', async () => {
      await expectInvalid(await broken('bad-json', (d) => writeFile(join(d, 'framewise.json'), '{"formatVersion": 1,')), /not valid JSON/);
      await expectInvalid(await broken('bad-model-json', (d) => writeFile(join(d, 'model.json'), '[]')), /not a tfjs layers model/);
      await expectInvalid(
        await broken('short-weights', async (d) => writeFile(join(d, 'weights.bin'), (await readFile(join(d, 'weights.bin'))).subarray(0, 100))),
        /bytes/,
      );
    });
    test('unknown crop, duplicate or empty class names, unknown embedder id: refused at load', async () => {
      const editMeta = (change: (m: Record<string, unknown>) => void) => async (d: string) => {
        const m = JSON.parse(await readFile(join(d, 'framewise.json'), 'utf8')) as Record<string, unknown>;
        change(m);
        await writeFile(join(d, 'framewise.json'), JSON.stringify(m));
      };
      await expectInvalid(
        await broken(
          'bad-crop',
          editMeta((m) => (m.crop = 'zoom')),
        ),
        /crop must be "center" or "pad", got "zoom"/,
      );
      await expectInvalid(
        await broken(
          'dup-classes',
          editMeta((m) => (m.classes = ['idle', 'wave', 'idle'])),
        ),
        /distinct/,
      );
      await expectInvalid(
        await broken(
          'empty-class',
          editMeta((m) => (m.classes = ['idle', '', 'clap'])),
        ),
        /non-empty/,
      );
      await expectInvalid(
        await broken(
          'bad-embedder',
          editMeta((m) => (m.embedderId = 'resnet_9000')),
        ),
        /unknown embedderId "resnet_9000"/,
      );
      await expectInvalid(
        await broken(
          'bad-features',
          editMeta((m) => (m.features = 'appearance+sound')),
        ),
        /features must be appearance or appearance\+motion, got "appearance\+sound"/,
      );
    });
    test('embedding dim in meta differs from the model, classes disagree, unknown version', async () => {
      const editMeta = (f: (m: Record<string, unknown>) => void) => async (d: string) => {
        const m = JSON.parse(await readFile(join(d, 'framewise.json'), 'utf8'));
        f(m);
        await writeFile(join(d, 'framewise.json'), JSON.stringify(m));
      };
      await expectInvalid(
        await broken(
          'dim',
          editMeta((m) => (m.embeddingDim = 1280)),
        ),
        /16-d embeddings.*1280/,
      );
      await expectInvalid(
        await broken(
          'classes',
          editMeta((m) => (m.classes = ['a', 'b', 'c', 'd'])),
        ),
        /does not match/,
      );
      await expectInvalid(
        await broken(
          'version',
          editMeta((m) => (m.formatVersion = 99)),
        ),
        /format version 99/,
      );
    });
  });

  test('a format-1 bundle (before unknownBelow) still loads, and the label stage never says unknown with it', async () => {
    const head = createHead({ inputDim: D, classes: C, hidden: 6 });
    const dir = join(root, 'format-1');
    await saveBundle(dir, head, { ...info, unknownBelow: 0.99 });
    head.dispose();
    const m = JSON.parse(await readFile(join(dir, 'framewise.json'), 'utf8'));
    expect(m.unknownBelow).toBe(0.99);
    m.formatVersion = 1;
    delete m.unknownBelow;
    await writeFile(join(dir, 'framewise.json'), JSON.stringify(m));
    const loaded = await loadBundle(dir);
    try {
      expect(loaded.meta.formatVersion).toBe(1);
      expect(loaded.meta.unknownBelow).toBeUndefined();
      const frames = sequence(12).map((embedding, index) => ({ streamId: 's', index, timestampMs: index * 100, embedding }));
      const rule = unknownRuleOf(loaded.meta);
      const labels = await lastValueFrom(from(frames).pipe(label(loaded.head, loaded.meta.classes, { unknown: rule }), toArray()));
      // An untrained head is unsure (top probability near 1/3): with the 0.99 of the bundle
      // before the edit every frame would be unknown; without the field none is.
      expect(labels.every((l) => l.score < 0.99)).toBe(true);
      expect(labels.map((l) => l.label).filter((l) => !info.classes.includes(l))).toEqual([]);
    } finally {
      loaded.head.dispose();
    }
  });

  test('a format-2 bundle (before features) loads as appearance only; a motion bundle says so in framewise.json', async () => {
    const head = createHead({ inputDim: D, classes: C, hidden: 6 });
    const dir = join(root, 'format-2');
    await saveBundle(dir, head, { ...info, features: 'appearance+motion' });
    head.dispose();
    const m = JSON.parse(await readFile(join(dir, 'framewise.json'), 'utf8'));
    expect(m).toMatchObject({ formatVersion: BUNDLE_FORMAT_VERSION, features: 'appearance+motion' });
    expect((await loadBundle(dir).then((b) => (b.head.dispose(), b.meta))).features).toBe('appearance+motion');
    m.formatVersion = 2;
    delete m.features;
    await writeFile(join(dir, 'framewise.json'), JSON.stringify(m));
    const loaded = await loadBundle(dir);
    loaded.head.dispose();
    expect(loaded.meta).toMatchObject({ formatVersion: 2, features: 'appearance' });
  });

  test("the motion stream's gain is saved and applied after loading; a format-3 bundle (before it) loads with gain 1", async () => {
    const spec = { inputDim: D, classes: C, hidden: 6, seed: 3, inputNorm: 0.1, inputNormDims: D - 4 };
    const head = createHead({ ...spec, motionGain: 5 });
    const seq = sequence(20);
    const expected = head.predict(seq, 4);
    const dir = join(root, 'motion-gain');
    await saveBundle(dir, head, { ...info, features: 'appearance+motion' });
    const plain = createHead({ ...spec, seed: 3 });
    plain.setWeights(head.getWeights());
    const ungained = plain.predict(seq, 4);
    head.dispose();
    plain.dispose();
    // The gain changes what the head computes, so a loader that dropped it would be caught.
    expect(maxDiff(ungained, expected)).toBeGreaterThan(1e-3);

    const loaded = await loadBundle(dir);
    expect(loaded.meta.motionGain).toBe(5);
    expect(maxDiff(loaded.head.predict(seq, 7), expected)).toBe(0);
    loaded.head.dispose();

    const m = JSON.parse(await readFile(join(dir, 'framewise.json'), 'utf8'));
    m.formatVersion = 3;
    delete m.motionGain;
    await writeFile(join(dir, 'framewise.json'), JSON.stringify(m));
    const old = await loadBundle(dir);
    expect(old.head.spec.motionGain).toBeUndefined();
    expect(maxDiff(old.head.predict(seq, 7), ungained)).toBe(0);
    old.head.dispose();
  });

  test('saving with the wrong number of labels is a usage error', async () => {
    const head = createHead({ inputDim: D, classes: C, hidden: 6 });
    await expect(saveBundle(join(root, 'x'), head, { ...info, classes: ['a', 'b'] })).rejects.toMatchObject({ code: ErrorCodes.USAGE });
    head.dispose();
  });
});
