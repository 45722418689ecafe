// The open-set check: a head trained on some generated classes labels a clip of a scene it never
// saw mostly `unknown` (the rule calibrated at train time, written in framewise.json), and clips of
// its own classes almost never `unknown`; `unknownBelow: 0` turns it off. The unseen clip gets a
// confident class from the softmax (0.8-0.86 here): the distance to the training data catches it.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openModel, type OpenModel } from '../../models/open-model.ts';
import { BUNDLE_FORMAT_VERSION } from '../../models/recurrent/bundle.ts';
import { labelVideo } from '../../pipeline/run-label.ts';
import { resolveTrainConfig } from '../../training/config.ts';
import { prepareData } from '../../training/prepare.ts';
import { trainBundle } from '../../training/train-bundle.ts';
import { UNKNOWN_QUANTILE_HELD_OUT } from '../../training/unknown-threshold.ts';
import { loadEmbedder } from '../../models/embedder.ts';
import { writeSegmentsVideo, type SynthClass } from '../../scripts/synth-dataset.ts';
import { MODELS_DIR } from '../helpers/real-models.ts';
import { TEST_EMBEDDER } from '../helpers/trained-bundle.ts';
import type { FrameLabel } from '../../core/types.ts';

const KNOWN: SynthClass[] = ['bars', 'pattern', 'off'];
const UNSEEN: SynthClass = 'steady';

let work: string;
let bundle: string;
let model: OpenModel;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'framewise-open-set-'));
  const data = join(work, 'data');
  // Folder per class, 3 clips of 3 s each; train's defaults: 3-fold cross-validation, whose held-out clips calibrate the rule.
  let seed = 1;
  for (const cls of KNOWN) {
    await mkdir(join(data, cls), { recursive: true });
    for (let i = 0; i < 3; i++) await writeSegmentsVideo(join(data, cls, `c${i}.mp4`), [{ cls, frames: 30 }], { seed: seed++, width: 160, height: 120 });
  }
  bundle = join(work, 'bundle');
  const config = resolveTrainConfig({
    data,
    out: bundle,
    embedder: TEST_EMBEDDER,
    modelsDir: MODELS_DIR,
    cacheDir: join(work, 'cache'),
    epochs: 40,
    augCopies: 0,
    hidden: 32,
    seed: 3,
    inputNorm: 0,
    patience: 0,
  });
  const embedder = await loadEmbedder({ id: TEST_EMBEDDER, modelsDir: MODELS_DIR });
  try {
    await trainBundle(config, await prepareData(config, embedder, () => {}), { log: () => {} });
  } finally {
    embedder.dispose();
  }
  model = await openModel({ bundle, modelsDir: MODELS_DIR, engine: 'tfjs', workers: 1 });
}, 240_000);

afterAll(async () => {
  model?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

async function labelsOf(cls: SynthClass, seed: number, unknownBelow?: number): Promise<FrameLabel[]> {
  const path = join(work, `test-${cls}-${seed}.mp4`);
  await writeSegmentsVideo(path, [{ cls, frames: 40 }], { seed, width: 160, height: 120 });
  const labels: FrameLabel[] = [];
  await labelVideo({ model, input: path, outDir: join(work, 'out'), formats: ['jsonl'], unknownBelow, onLabel: (l) => labels.push(l) });
  return labels;
}
const unknownShare = (ls: FrameLabel[]) => ls.filter((l) => l.label === 'unknown').length / ls.length;

describe('open set', () => {
  test("training calibrates unknownBelow on the cross-validation folds' held-out frames and writes it in framewise.json", async () => {
    const meta = JSON.parse(await readFile(join(bundle, 'framewise.json'), 'utf8'));
    expect(meta.formatVersion).toBe(BUNDLE_FORMAT_VERSION);
    expect(meta.unknownBelow).toBeGreaterThan(0);
    expect(meta.unknownBelow).toBeLessThan(1);
    expect(meta.unknownCalibration).toMatchObject({ on: 'cross-validation', quantile: UNKNOWN_QUANTILE_HELD_OUT, frames: 9 * 30 });
    expect(model.meta.unknownBelow).toBe(meta.unknownBelow);
    expect(meta.unknownFar.centroids).toHaveLength(KNOWN.length);
    expect(meta.unknownFar.beyond).toHaveLength(KNOWN.length);
  });

  test('a clip of an unseen pattern is mostly unknown; clips of its own classes almost never', async () => {
    const unseen = await labelsOf(UNSEEN, 101);
    const own = await Promise.all(KNOWN.map((c, i) => labelsOf(c, 201 + i)));
    expect(unknownShare(unseen)).toBeGreaterThan(0.5);
    for (const ls of own) expect(unknownShare(ls)).toBeLessThan(0.05);
    // The probabilities are unchanged and the score is the top one, unknown or not.
    for (const l of unseen) expect(l.score).toBeCloseTo(Math.max(...l.probs), 6);
  });

  test('unknownBelow 0 turns it off: the same unseen clip gets only classes', async () => {
    const off = await labelsOf(UNSEEN, 101, 0);
    expect(off.length).toBeGreaterThan(0);
    expect(unknownShare(off)).toBe(0);
  });
});
