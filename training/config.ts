// The training configuration: every knob of `framewise train`, typed and commented, resolved once
// into a frozen object that is stored in the bundle and in checkpoints.
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import type { CropPolicy } from '../core/types.ts';
import type { CellType } from '../models/recurrent/state.ts';
import { FEATURE_SETS, type FeatureSet } from '../models/motion.ts';
import type { DatasetOptions } from './dataset.ts';

export interface TrainConfig {
  /** Dataset root (one of the three layouts, or an annotation tool's export). */
  data: string;
  /** How to read it: a forced layout, the ELAN tier, Label Studio's frame rate or config. */
  dataOptions?: DatasetOptions;
  /** Output bundle folder. */
  out: string;
  embedder: string;
  /** The head's per-frame input: the embedding alone, or with the motion stream (models/motion.ts). */
  features: FeatureSet;
  /** Frames per second the head sees (decode resamples to it); null = source rate. */
  fps: number | null;
  crop: CropPolicy;
  cell: Exclude<CellType, 'none'>;
  layers: number;
  hidden: number;
  /** Linear projection of the embedding before the recurrent layers; 0 = none. */
  projection: number;
  /** Rate α of the causal running mean subtracted from each embedding (0 = off): removes what
   * stays still (person, room) so the head keys on motion; see models/recurrent/input-norm.ts. */
  inputNorm: number;
  /** Factor on the motion stream before the head ('auto': DEFAULTS.motionVariance times the appearance part's variance on the training clips, training/motion-gain.ts). */
  motionGain: number | 'auto';
  /** Inverted dropout on the (projected) embedding, training only. */
  dropout: number;
  /** Global-norm gradient clipping threshold (0 = off). */
  clip: number;
  learningRate: number;
  /** Decoupled weight decay (AdamW) on kernels; 0 = plain Adam. */
  weightDecay: number;
  /** Linear warm-up steps, then `decay` to learningRate/100 at the last step. */
  warmupSteps: number;
  decay: 'none' | 'cosine' | 'linear';
  epochs: number;
  /** Sequences advanced in parallel (state slots). */
  batch: number;
  /** Truncated-BPTT chunk length k, in frames. */
  chunk: number;
  /** Epochs without a better validation loss before stopping; 0 = never stop early. */
  patience: number;
  seed: number;
  /** Fraction of videos (or groups) held out for validation and early stopping; 0 = none (then
   * `folds` picks the number of epochs). */
  valSplit: number;
  /** Without a validation split: k-fold cross-validation picks the number of epochs, then the
   * bundle is trained on every clip (0 or 1 = off: train `epochs` epochs on every clip). */
  folds: number;
  /** Regex whose first capture group names a video's group (person, session). */
  groupBy?: string;
  /** Groups that form the validation set (with groupBy), e.g. one person. */
  valGroups?: string[];
  /** Augmented (random crop/scale/flip) embedding copies per training video, besides the center view. */
  augCopies: number;
  /** Temporal jitter: playback speed range and frame-drop probability (training only). */
  speedJitter: [number, number];
  dropFrames: number;
  /** Folder-per-class data: stitched sequences per epoch (0 = auto) and clips per sequence. */
  stitchSequences: number;
  clipsPerSequence: number;
  /** Folder-per-class data: stitch by drawing a class uniformly, then a clip of it. */
  balanceClasses: boolean;
  modelsDir?: string;
  cacheDir: string;
}

export const TRAIN_DEFAULTS: Omit<TrainConfig, 'data' | 'out'> = {
  embedder: DEFAULTS.embedder,
  features: DEFAULTS.features,
  fps: DEFAULTS.fps,
  crop: DEFAULTS.crop,
  cell: DEFAULTS.cell,
  layers: DEFAULTS.layers,
  hidden: DEFAULTS.hidden,
  projection: 0,
  inputNorm: DEFAULTS.inputNorm,
  motionGain: 'auto',
  dropout: DEFAULTS.dropout,
  clip: DEFAULTS.clip,
  learningRate: DEFAULTS.learningRate,
  weightDecay: 0,
  warmupSteps: 20,
  decay: 'cosine',
  epochs: DEFAULTS.epochs,
  batch: DEFAULTS.batch,
  chunk: DEFAULTS.chunk,
  patience: 8,
  seed: DEFAULTS.seed,
  valSplit: 0,
  folds: 3,
  augCopies: 2,
  // No playback-speed change and no dropped frames by default: speed is part of an activity's
  // motion (walking, jogging, running) and the head is run at a fixed rate. Measured on ud810
  // (mobilenet_v1_0.25, person 1 -> 2, 3 seeds): 78.6% of frames without, 68.0% with [0.8, 1.25]
  // and 0.05.
  speedJitter: [1, 1],
  dropFrames: 0,
  stitchSequences: 0,
  clipsPerSequence: 4,
  balanceClasses: true,
  cacheDir: DEFAULTS.cacheDir,
};

export function resolveTrainConfig(partial: Partial<TrainConfig> & Pick<TrainConfig, 'data' | 'out'>): Readonly<TrainConfig> {
  const c: TrainConfig = { ...TRAIN_DEFAULTS, ...stripUndefined(partial) } as TrainConfig;
  const bad = (m: string) => {
    throw new FramewiseError(ErrorCodes.USAGE, m);
  };
  const int = (v: number, min: number, name: string) => (!Number.isInteger(v) || v < min) && bad(`--${name} must be an integer >= ${min}, got ${v}`);
  int(c.layers, 1, 'layers');
  int(c.hidden, 1, 'hidden');
  int(c.projection, 0, 'projection');
  int(c.epochs, 1, 'epochs');
  int(c.batch, 1, 'batch');
  int(c.chunk, 1, 'chunk');
  int(c.patience, 0, 'patience');
  int(c.augCopies, 0, 'aug-copies');
  int(c.warmupSteps, 0, 'warmup');
  int(c.folds, 0, 'folds');
  if (!(c.inputNorm >= 0 && c.inputNorm <= 1)) bad(`--input-norm must be in [0, 1], got ${c.inputNorm}`);
  if (c.motionGain !== 'auto' && !(c.motionGain > 0 && Number.isFinite(c.motionGain)))
    bad(`--motion-gain must be "auto" or a positive number, got ${c.motionGain}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) bad(`--dropout must be in [0, 1), got ${c.dropout}`);
  if (!(c.learningRate > 0 && c.learningRate < 10)) bad(`--lr must be in (0, 10), got ${c.learningRate}`);
  if (!(c.clip >= 0)) bad(`--clip must be >= 0, got ${c.clip}`);
  if (!(c.valSplit >= 0 && c.valSplit < 1)) bad(`--val-split must be in [0, 1), got ${c.valSplit}`);
  const { min, max } = DEFAULTS.fpsRange;
  if (c.fps !== null && !(c.fps >= min && c.fps <= max)) bad(`--fps must be in [${min}, ${max}] or "source", got ${c.fps}`);
  if (!['lstm', 'gru'].includes(c.cell)) bad(`--cell must be lstm or gru, got ${c.cell}`);
  if (!FEATURE_SETS.includes(c.features)) bad(`--features must be ${FEATURE_SETS.join(' or ')}, got ${c.features}`);
  if (!['center', 'pad'].includes(c.crop)) bad(`--crop must be center or pad, got ${c.crop}`);
  if (c.groupBy !== undefined) {
    try {
      new RegExp(c.groupBy);
    } catch (err) {
      bad(`--group-by is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  return Object.freeze(c);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
