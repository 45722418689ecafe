import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { resolveTrainConfig } from '../../training/config.ts';
import { crossValidateEpochs } from '../../training/cross-validate.ts';
import type { EmbeddedVideo } from '../../training/embed-dataset.ts';
import type { PreparedData } from '../../training/prepare.ts';
import { trainBundle } from '../../training/train-bundle.ts';
import { UNKNOWN_QUANTILE_HELD_OUT } from '../../training/unknown-threshold.ts';
import { SeededRandom } from '../../core/seeded-random.ts';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

// 3 classes x 3 clips of 12 frames: a class direction plus noise, in 8 dimensions.
function data(): PreparedData {
  const rng = new SeededRandom(1);
  const D = 8;
  const train: EmbeddedVideo[][] = [];
  for (let c = 0; c < 3; c++) {
    for (let k = 0; k < 3; k++) {
      const name = `c${c}/clip${k}`;
      const embeddings = Array.from({ length: 12 }, () => Float32Array.from({ length: D }, (_, d) => (d === c ? 1 : 0) + 0.3 * rng.normal()));
      const video = { name, path: `${name}.mp4`, labels: { kind: 'clip' as const, label: `c${c}` } };
      train.push([{ name, embeddings, labels: new Int32Array(12).fill(c), video, view: 'center', timestampsMs: embeddings.map((_, t) => t * 100) }]);
    }
  }
  return { layout: 'folders', classes: ['c0', 'c1', 'c2'], dim: D, features: 'appearance', train, val: [], summary: {} };
}

async function config() {
  const out = await mkdtemp(join(tmpdir(), 'cv-test-'));
  dirs.push(out);
  return resolveTrainConfig({ data: 'unused', out, hidden: 8, epochs: 5, batch: 2, chunk: 8, warmupSteps: 2, seed: 3 });
}

test('cross-validation is seeded: the same seed gives the same curves and epoch count', async () => {
  const c = await config();
  const a = await crossValidateEpochs(c, data(), () => {});
  const b = await crossValidateEpochs(c, data(), () => {});
  expect(a).toBeDefined();
  expect(a!.folds).toBe(3);
  expect(a!.by).toBe('clip');
  expect(a!.valLoss).toHaveLength(5);
  // Every clip once, labeled by the head of the fold that held it out.
  expect(a!.heldOut.probs).toHaveLength(9);
  expect(a!.heldOut.truths.flatMap((t) => Array.from(t)).sort()).toEqual(
    data()
      .train.flatMap((v) => Array.from(v[0]!.labels))
      .sort(),
  );
  // Everything but the wall-clock fields of the fold curves is repeatable.
  const untimed = (cv: typeof a) => ({ ...cv, histories: cv!.histories.map((h) => h.map(({ seconds: _s, framesPerSecond: _f, ...r }) => r)) });
  expect(untimed(b)).toEqual(untimed(a));
  const other = await crossValidateEpochs({ ...c, seed: 4 }, data(), () => {});
  expect(other!.valLoss).not.toEqual(a!.valLoss);
});

test('the final fit on all clips is repeatable: same seed, same weights and recorded choice', async () => {
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const c = await config();
    const trained = await trainBundle(c, data(), { log: () => {} });
    const meta = JSON.parse(await readFile(join(c.out, 'framewise.json'), 'utf8'));
    runs.push({ weights: await readFile(join(c.out, 'weights.bin')), meta, epochs: trained.history.length });
  }
  expect(runs[1]!.weights.equals(runs[0]!.weights)).toBe(true);
  const cv = runs[0]!.meta.metrics.crossValidation;
  expect(cv.folds).toBe(3);
  expect(runs[0]!.epochs).toBe(cv.epochs);
  expect(runs[0]!.meta.training.epochs).toBe(cv.epochs);
  // The unknown rule is calibrated on the folds' held-out clips, not on the head's own training frames.
  expect(runs[0]!.meta.unknownCalibration).toMatchObject({
    on: 'cross-validation',
    quantile: UNKNOWN_QUANTILE_HELD_OUT,
    frames: 108,
    farOn: 'training',
    farMargin: 3.5,
  });
  expect(runs[1]!.meta.unknownBelow).toBe(runs[0]!.meta.unknownBelow);
});
