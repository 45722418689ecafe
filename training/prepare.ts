// The data side of training: load and split the dataset, embed it once (cached), and build each
// epoch's sequences (a random augmented view per clip, temporally jittered, clips stitched).
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { SeededRandom } from '../core/seeded-random.ts';
import type { Embedder } from '../models/embedder.ts';
import { featureDim, type FeatureSet } from '../models/motion.ts';
import type { TrainConfig } from './config.ts';
import { loadDataset, splitDataset, type Dataset } from './dataset.ts';
import { embedDataset, type EmbeddedVideo } from './embed-dataset.ts';
import { withNegatives } from './negatives.ts';
import { stitchClips, temporalJitter, type LabeledSequence } from './sequences.ts';

export interface PreparedData {
  layout: Dataset['layout'];
  classes: string[];
  /** Floats per frame the head takes (the embedding, plus the motion stream if `features` has it). */
  dim: number;
  features: FeatureSet;
  /** Per training video: its views (center first, then augmented copies). */
  train: EmbeddedVideo[][];
  /** Per validation video: the center view only. */
  val: EmbeddedVideo[][];
  summary: Record<string, unknown>;
  /** The precision the embeddings were computed with (recorded in the bundle). */
  precision?: 'fp32' | 'int8';
}

/** Loads, splits and embeds the dataset (cached embeddings are reused). */
export async function prepareData(config: Readonly<TrainConfig>, embedder: Embedder, log: (m: string) => void): Promise<PreparedData> {
  const own = await loadDataset(config.data, config.dataOptions);
  const ds = config.dataOptions?.negatives ? await withNegatives(own, config.dataOptions.negatives) : own;
  const { train, val } = splitDataset(ds.videos, {
    valSplit: config.valSplit,
    seed: config.seed,
    groupBy: config.groupBy ? new RegExp(config.groupBy) : undefined,
    valGroups: config.valGroups,
  });
  if (train.length === 0) throw new FramewiseError(ErrorCodes.DATASET_INVALID, 'the split left no training videos');
  log(`dataset ${ds.root}: ${ds.layout} layout, ${ds.classes.length} classes (${ds.classes.join(', ')}), ${train.length} train / ${val.length} val videos`);
  const common = {
    embedder,
    classes: ds.classes,
    fps: config.fps,
    crop: config.crop,
    features: config.features,
    cacheDir: config.cacheDir,
    seed: config.seed,
    onProgress: log,
  };
  const trainEmb = await embedDataset(train, { ...common, copies: config.augCopies });
  const valEmb = await embedDataset(val, { ...common, copies: 0 });
  if (trainEmb.length === 0) throw new FramewiseError(ErrorCodes.DATASET_INVALID, 'no training video has a decodable frame');
  const count = (vs: EmbeddedVideo[][]) => {
    const perClass: Record<string, number> = {};
    for (const v of vs) for (const l of v[0]!.labels) perClass[ds.classes[l]!] = (perClass[ds.classes[l]!] ?? 0) + 1;
    return { videos: vs.length, frames: vs.reduce((n, v) => n + v[0]!.labels.length, 0), framesPerClass: perClass, names: vs.map((v) => v[0]!.name) };
  };
  return {
    layout: ds.layout,
    classes: ds.classes,
    dim: featureDim(embedder.dim, config.features),
    features: config.features,
    precision: embedder.precision ?? 'fp32',
    train: trainEmb,
    val: valEmb,
    summary: { root: ds.root, layout: ds.layout, classes: ds.classes, train: count(trainEmb), val: count(valEmb), augCopies: config.augCopies },
  };
}

/** Training sequences for one epoch: a random view of each video, temporally jittered; clips stitched. */
export function epochSequences(data: PreparedData, config: Readonly<TrainConfig>, rng: SeededRandom): LabeledSequence[] {
  const rand = () => rng.next();
  const pick = data.train.map((views) => temporalJitter(views[rng.int(views.length)]!, { rand, speed: config.speedJitter, dropProb: config.dropFrames }));
  if (data.layout !== 'folders') return pick;
  const sequences = config.stitchSequences || Math.max(config.batch, Math.ceil((2 * pick.length) / config.clipsPerSequence));
  return stitchClips(pick, { sequences, clipsPerSequence: config.clipsPerSequence, rand, balanceClasses: config.balanceClasses });
}

/** Deterministic validation sequences (center views; clips stitched with a fixed seed). */
export function validationSequences(data: PreparedData, config: Readonly<TrainConfig>): LabeledSequence[] {
  const center = data.val.map((v) => v[0]!);
  if (data.layout !== 'folders' || center.length === 0) return center;
  const rng = new SeededRandom(config.seed + 7);
  return stitchClips(center, { sequences: Math.max(4, center.length), clipsPerSequence: config.clipsPerSequence, rand: () => rng.next() });
}
