// `framewise train --data D --out B`: learns the recurrent head on labeled clips (the embedder
// stays frozen: transfer learning), writes a model bundle and a report. The tuning workflow lives
// here too: --check, --overfit N, --lr-find, --search.
import { join } from 'node:path';
import { loadEmbeddingEngine } from '../../models/engine-choice.ts';
import { TRAIN_DEFAULTS, resolveTrainConfig, type TrainConfig } from '../../training/config.ts';
import { checkpointConfig } from '../../training/fit.ts';
import { prepareData } from '../../training/prepare.ts';
import { trainBundle } from '../../training/train-bundle.ts';
import { checkInitialLoss, findLearningRate, overfitSmall, randomSearch } from '../../training/tuning.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import {
  bool,
  modelOptions,
  num,
  str,
  type CommandSpec,
  type OptionValues,
  modelRequest,
  cacheDirOption,
  fpsValue,
  type ModelRequest,
  precisionOptions,
} from '../command.ts';
import { datasetOptions, datasetOptionsFrom } from '../dataset-options.ts';

const D = TRAIN_DEFAULTS;

export const command: CommandSpec = {
  name: 'train',
  summary: 'Train the recurrent head on labeled clips (folder per class, per-frame labels, ActivityNet segments, or CVAT / Label Studio / ELAN exports).',
  options: {
    data: { type: 'string', short: 'd', valueName: 'DIR', description: 'dataset root' },
    ...datasetOptions,
    out: { type: 'string', short: 'o', valueName: 'DIR', description: 'bundle folder to write' },
    negatives: { type: 'string', valueName: 'DIR', description: "clips of other activities (any folder of videos, recursively): added as class 'background'" },
    embedder: { type: 'string', valueName: 'ID', default: D.embedder, description: 'frozen ImageNet CNN' },
    features: {
      type: 'string',
      valueName: 'SET',
      default: D.features,
      description: "what the head sees per frame: 'appearance' (the embedding) or 'appearance+motion' (plus where and how much the picture changed)",
    },
    fps: { type: 'string', valueName: 'N', default: String(D.fps), description: "frames per second the head sees ('source' keeps the video's rate)" },
    crop: { type: 'string', valueName: 'POLICY', default: D.crop, description: 'center or pad' },
    cell: { type: 'string', valueName: 'TYPE', default: D.cell, description: 'lstm or gru (lighter)' },
    layers: { type: 'string', valueName: 'N', default: String(D.layers), description: 'stacked recurrent layers' },
    hidden: { type: 'string', valueName: 'H', default: String(D.hidden), description: 'hidden size' },
    projection: { type: 'string', valueName: 'N', default: String(D.projection), description: 'linear projection of the embedding first (0 = none)' },
    'input-norm': {
      type: 'string',
      valueName: 'ALPHA',
      default: String(D.inputNorm),
      description: 'subtract a running mean (rate ALPHA) from each embedding: keys on motion, not looks (0 = off)',
    },
    'motion-gain': {
      type: 'string',
      valueName: 'G',
      default: String(D.motionGain),
      description: "factor on the motion stream before the head ('auto': measured on the training clips, see the README)",
    },
    dropout: { type: 'string', valueName: 'P', default: String(D.dropout), description: 'dropout on the embedding in training (off at test time)' },
    clip: { type: 'string', valueName: 'NORM', default: String(D.clip), description: 'gradient clipping by global norm (0 = off)' },
    lr: { type: 'string', valueName: 'RATE', default: String(D.learningRate), description: 'peak learning rate (Adam)' },
    'weight-decay': { type: 'string', valueName: 'W', default: String(D.weightDecay), description: 'decoupled weight decay (AdamW)' },
    warmup: { type: 'string', valueName: 'STEPS', default: String(D.warmupSteps), description: 'linear learning-rate warm-up' },
    decay: { type: 'string', valueName: 'KIND', default: D.decay, description: 'learning-rate decay after warm-up: none, cosine, linear' },
    epochs: { type: 'string', valueName: 'N', default: String(D.epochs), description: 'most epochs' },
    batch: { type: 'string', valueName: 'B', default: String(D.batch), description: 'sequences advanced in parallel' },
    chunk: { type: 'string', valueName: 'K', default: String(D.chunk), description: 'truncated-BPTT chunk length (frames); state is carried across chunks' },
    patience: {
      type: 'string',
      valueName: 'N',
      default: String(D.patience),
      description: 'early stop after N epochs without a better validation loss (0 = off)',
    },
    seed: { type: 'string', valueName: 'N', default: String(D.seed), description: 'seed for splits, init, augmentation and dropout' },
    'val-split': {
      type: 'string',
      valueName: 'F',
      default: String(D.valSplit),
      description: 'fraction of videos (or groups) held out for early stopping (0 = none: --folds decides)',
    },
    folds: {
      type: 'string',
      valueName: 'K',
      default: String(D.folds),
      description:
        'without a validation set: K-fold cross-validation (by --group-by groups when there are 3 or more) picks the epochs, then all clips train the bundle (0 = off)',
    },
    'group-by': { type: 'string', valueName: 'REGEX', description: "keeps a group's videos on one side; first capture group names it, e.g. 'P(\\d)'" },
    'val-groups': { type: 'string', valueName: 'LIST', description: 'with --group-by: these groups are the validation set' },
    'aug-copies': { type: 'string', valueName: 'N', default: String(D.augCopies), description: 'random crop/scale/flip embedding copies per training video' },
    'drop-frames': { type: 'string', valueName: 'P', default: String(D.dropFrames), description: 'temporal jitter: probability of dropping a frame' },
    'clips-per-sequence': {
      type: 'string',
      valueName: 'N',
      default: String(D.clipsPerSequence),
      description: 'folder-per-class data: clips stitched per training sequence',
    },
    resume: { type: 'boolean', description: 'continue from <out>/checkpoint (architecture from the checkpoint)' },
    check: { type: 'boolean', description: 'print the initial loss next to ln(C) and stop' },
    overfit: { type: 'string', valueName: 'N', description: 'train on N sequences only; should reach ~100% training accuracy' },
    'lr-find': { type: 'boolean', description: 'learning-rate range test; prints a suggested rate' },
    search: { type: 'boolean', description: 'coarse-then-fine random search over lr, hidden, dropout, chunk' },
    'cache-dir': cacheDirOption,
    ...modelOptions,
  },
  async run(ctx) {
    const { values, stderr, stdout } = ctx;
    const log = (m: string) => stderr.write(`${m}\n`);
    const request = modelRequest(ctx);
    let config = configFromOptions(values, request);
    if (bool(values, 'resume')) {
      const saved = await checkpointConfig(config.out);
      if (!saved) throw new FramewiseError(ErrorCodes.USAGE, `--resume: no checkpoint in ${join(config.out, 'checkpoint')}`);
      // The checkpoint's architecture wins; only the epoch budget may be raised.
      config = resolveTrainConfig({ ...saved, epochs: Math.max(saved.epochs, config.epochs), data: config.data, out: config.out });
    }
    const embedder = await loadEmbeddingEngine({
      ...request,
      id: config.embedder,
      modelsDir: config.modelsDir,
      cacheDir: config.cacheDir,
      ...precisionOptions(ctx, [config.data]),
      onProgress: log,
    });
    try {
      const data = await prepareData(config, embedder, log);
      if (bool(values, 'check')) {
        const { loss, expected } = checkInitialLoss(config, data, log);
        stdout.write(
          `check passed: initial loss ${loss.toFixed(4)} is within 25% of ln(C) = ${expected.toFixed(4)}, as an untrained head over ${data.classes.length} classes should be\n`,
        );
        return 0;
      }
      const overfit = num(values, 'overfit', 1);
      if (overfit !== undefined) {
        const acc = await overfitSmall(config, data, overfit, log);
        if (acc < 0.95)
          throw new FramewiseError(
            ErrorCodes.TRAINING_CHECK_FAILED,
            `overfit check failed: ${(acc * 100).toFixed(1)}% training accuracy on ${overfit} sequence(s) (want 95% or more); raise --epochs or --lr, or check the data`,
          );
        stdout.write(`overfit check passed: ${(acc * 100).toFixed(1)}% training accuracy on ${overfit} sequence(s) (want 95% or more)\n`);
        return 0;
      }
      if (bool(values, 'lr-find')) {
        const { points, suggested } = findLearningRate(config, data);
        for (const p of points.filter((_, i) => i % 5 === 0)) stdout.write(`lr ${p.lr.toExponential(2)}  loss ${p.loss.toFixed(4)}\n`);
        stdout.write(`suggested --lr ${suggested.toExponential(1)} (a tenth of the rate at the lowest loss)\n`);
        return 0;
      }
      if (bool(values, 'search')) {
        const trials = await randomSearch(config, data, { log });
        stdout.write('rank  stage   lr        hidden  dropout  chunk  val loss  val acc\n');
        trials.forEach((t, i) =>
          stdout.write(
            `${String(i + 1).padStart(4)}  ${t.stage.padEnd(6)}  ${t.lr.toExponential(2)}  ${String(t.hidden).padStart(6)}  ${t.dropout.toFixed(2).padStart(7)}  ${String(t.chunk).padStart(5)}  ${t.valLoss.toFixed(4).padStart(8)}  ${(t.valAccuracy * 100).toFixed(1).padStart(6)}%\n`,
          ),
        );
        return 0;
      }
      await trainBundle(config, data, { log, resume: bool(values, 'resume') });
      return 0;
    } finally {
      embedder.dispose();
    }
  },
};

export function configFromOptions(values: OptionValues, request: Pick<ModelRequest, 'modelsDir' | 'cacheDir'>): Readonly<TrainConfig> {
  const data = str(values, 'data');
  const out = str(values, 'out');
  if (!data) throw new FramewiseError(ErrorCodes.USAGE, '--data <dataset folder> is required');
  if (!out) throw new FramewiseError(ErrorCodes.USAGE, '--out <bundle folder> is required');
  return resolveTrainConfig({
    data,
    dataOptions: withNegativesOption(datasetOptionsFrom(values), str(values, 'negatives')),
    out,
    embedder: str(values, 'embedder'),
    features: str(values, 'features') as TrainConfig['features'],
    fps: fpsValue(values),
    crop: str(values, 'crop') as TrainConfig['crop'],
    cell: str(values, 'cell') as TrainConfig['cell'],
    layers: num(values, 'layers', 1, 8),
    hidden: num(values, 'hidden', 1, 4096),
    projection: num(values, 'projection', 0, 4096),
    inputNorm: num(values, 'input-norm', 0, 1),
    motionGain: str(values, 'motion-gain') === 'auto' ? 'auto' : num(values, 'motion-gain'), // resolveTrainConfig checks it is > 0
    dropout: num(values, 'dropout', 0, 0.99),
    clip: num(values, 'clip', 0),
    learningRate: num(values, 'lr', 0),
    weightDecay: num(values, 'weight-decay', 0),
    warmupSteps: num(values, 'warmup', 0),
    decay: str(values, 'decay') as TrainConfig['decay'],
    epochs: num(values, 'epochs', 1),
    batch: num(values, 'batch', 1, 1024),
    chunk: num(values, 'chunk', 1, 10000),
    patience: num(values, 'patience', 0),
    seed: num(values, 'seed'),
    valSplit: num(values, 'val-split', 0, 0.99),
    folds: num(values, 'folds', 0, 100),
    groupBy: str(values, 'group-by'),
    valGroups: str(values, 'val-groups')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    augCopies: num(values, 'aug-copies', 0, 100),
    dropFrames: num(values, 'drop-frames', 0, 0.9),
    clipsPerSequence: num(values, 'clips-per-sequence', 1, 100),
    modelsDir: request.modelsDir,
    cacheDir: request.cacheDir,
  });
}

/** `--negatives DIR` travels with the dataset options (training/negatives.ts reads it). */
function withNegativesOption(options: ReturnType<typeof datasetOptionsFrom>, negatives: string | undefined): ReturnType<typeof datasetOptionsFrom> {
  return negatives === undefined ? options : { ...options, negatives };
}
