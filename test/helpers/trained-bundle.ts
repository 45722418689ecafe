// A small bundle trained for real on generated data (mobilenet_v1_0.25_224, the fastest embedder),
// for end-to-end tests of label, serve and the queue. Built once per machine and reused: the
// folder name carries a version, and a finished build is renamed into place atomically, so test
// files running in parallel never see half a bundle.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEmbedder } from '../../models/embedder.ts';
import { resolveTrainConfig } from '../../training/config.ts';
import { prepareData } from '../../training/prepare.ts';
import { trainBundle } from '../../training/train-bundle.ts';
import { synthDataset } from '../../scripts/synth-dataset.ts';
import { MODELS_DIR } from './real-models.ts';

/** Bump when the training recipe below changes, so stale bundles are not reused. */
const VERSION = 5;
export const TEST_EMBEDDER = 'mobilenet_v1_0.25_224';
const ROOT = join(process.env.FRAMEWISE_CACHE ?? join(tmpdir(), 'framewise-test-cache'), `trained-bundle-v${VERSION}`);

export interface TrainedBundleFixture {
  /** The bundle folder. */
  bundle: string;
  /** The generated per-frame dataset it was trained on (videos/ + labels/). */
  data: string;
  classes: string[];
}

let building: Promise<TrainedBundleFixture> | undefined;

export function trainedBundle(): Promise<TrainedBundleFixture> {
  building ??= build();
  return building;
}

async function build(): Promise<TrainedBundleFixture> {
  const fixture = { bundle: join(ROOT, 'bundle'), data: join(ROOT, 'data'), classes: ['bars', 'blink', 'off', 'pattern', 'steady'] };
  if (existsSync(join(fixture.bundle, 'framewise.json'))) return fixture;
  await mkdir(join(ROOT, '..'), { recursive: true });
  const work = await mkdtemp(`${ROOT}-build-`);
  const log = () => {};
  await synthDataset({ out: join(work, 'data'), videos: 5, seed: 11 });
  const config = resolveTrainConfig({
    data: join(work, 'data'),
    out: join(work, 'bundle'),
    embedder: TEST_EMBEDDER,
    modelsDir: MODELS_DIR,
    cacheDir: join(work, 'cache'),
    epochs: 15,
    valSplit: 0,
    folds: 0,
    augCopies: 0,
    hidden: 64,
    seed: 5,
    inputNorm: 0, // still scenes (see the demo command)
  });
  const embedder = await loadEmbedder({ id: TEST_EMBEDDER, modelsDir: MODELS_DIR });
  try {
    await trainBundle(config, await prepareData(config, embedder, log), { log });
  } finally {
    embedder.dispose();
  }
  await rm(join(work, 'cache'), { recursive: true, force: true });
  try {
    await rename(work, ROOT);
  } catch {
    // Another test file finished first: use its bundle, drop ours.
    await rm(work, { recursive: true, force: true });
  }
  return fixture;
}
