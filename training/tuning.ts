// The tuning workflow as functions: check the initial loss, overfit a small
// sample, find a learning rate, and a coarse-then-fine random search ranked by validation loss.
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { SeededRandom } from '../core/seeded-random.ts';
import { chunkBatches } from '../models/recurrent/chunk-feeder.ts';
import { createTrainer } from '../models/recurrent/trainer.ts';
import { evaluatePass } from '../models/recurrent/evaluate.ts';
import type { TrainConfig } from './config.ts';
import { fit, newHead } from './fit.ts';
import { epochSequences, validationSequences, type PreparedData } from './prepare.ts';
import type { LabeledSequence } from './sequences.ts';

const feed = (s: LabeledSequence) => ({ frames: s.embeddings, labels: s.labels });

/** Initial loss of a fresh head on the training data, next to ln C. Throws when they disagree badly. */
export function checkInitialLoss(config: Readonly<TrainConfig>, data: PreparedData, log: (m: string) => void): { loss: number; expected: number } {
  const head = newHead(config, data);
  try {
    const seqs = epochSequences(data, config, new SeededRandom(config.seed));
    const { loss } = evaluatePass(head, seqs.map(feed));
    const expected = Math.log(data.classes.length);
    log(`initial loss ${loss.toFixed(4)}, ln(C) = ln(${data.classes.length}) = ${expected.toFixed(4)}, ratio ${(loss / expected).toFixed(3)}`);
    // A fresh softmax over C classes should be near uniform; 25% off means a broken init or labels.
    if (!(Math.abs(loss - expected) <= 0.25 * expected)) {
      throw new FramewiseError(
        ErrorCodes.TRAINING_CHECK_FAILED,
        `check failed: initial loss ${loss.toFixed(3)} is more than 25% from ln(C) = ${expected.toFixed(3)}: check the labels and the initialisation`,
      );
    }
    return { loss, expected };
  } finally {
    head.dispose();
  }
}

/** Trains on the first `n` training sequences only, without dropout; reports the final training accuracy. */
export async function overfitSmall(config: Readonly<TrainConfig>, data: PreparedData, n: number, log: (m: string) => void): Promise<number> {
  const seqs = epochSequences(data, config, new SeededRandom(config.seed)).slice(0, n);
  const cfg = { ...config, dropout: 0, patience: 0, weightDecay: 0, batch: Math.min(config.batch, seqs.length) };
  const { head, history } = await fit(cfg, { ...data, val: [] }, { log, fixedSequences: seqs, noCheckpoint: true });
  const acc = evaluatePass(head, seqs.map(feed)).accuracy;
  head.dispose();
  log(`overfit ${seqs.length} sequence(s) for ${history.length} epochs: training accuracy ${(acc * 100).toFixed(1)}% (want ~100%)`);
  return acc;
}

export interface LrPoint {
  lr: number;
  loss: number;
}

/**
 * Learning-rate range test (Smith 2017): lr grows exponentially from `min` to `max` over `steps`
 * updates; the suggestion is a tenth of the rate where the smoothed loss was lowest.
 */
export function findLearningRate(
  config: Readonly<TrainConfig>,
  data: PreparedData,
  o: { min?: number; max?: number; steps?: number } = {},
): { points: LrPoint[]; suggested: number } {
  const min = o.min ?? 1e-5;
  const max = o.max ?? 1;
  const steps = o.steps ?? 100;
  const head = newHead(config, data);
  const lrAt = (s: number) => min * Math.pow(max / min, s / (steps - 1));
  const trainer = createTrainer(head, { batch: config.batch, clip: config.clip, seed: config.seed + 2, schedule: lrAt });
  const points: LrPoint[] = [];
  const rng = new SeededRandom(config.seed);
  let smooth = NaN;
  let bestSmooth = Infinity;
  try {
    outer: while (points.length < steps) {
      for (const item of chunkBatches(epochSequences(data, config, rng).map(feed), { batch: config.batch, chunk: config.chunk, dim: data.dim, rng })) {
        if (item.reset.length) trainer.resetSlots(item.reset);
        const r = trainer.step(item.chunk);
        smooth = Number.isNaN(smooth) ? r.loss : 0.8 * smooth + 0.2 * r.loss;
        points.push({ lr: r.lr, loss: smooth });
        bestSmooth = Math.min(bestSmooth, smooth);
        // Past 4x the best loss the run has diverged: the rest of the range says nothing.
        if (points.length >= steps || !Number.isFinite(smooth) || smooth > 4 * bestSmooth) break outer;
      }
    }
  } finally {
    trainer.dispose();
    head.dispose();
  }
  const best = points.reduce((a, b) => (b.loss < a.loss ? b : a));
  return { points, suggested: best.lr / 10 };
}

export interface Trial {
  lr: number;
  hidden: number;
  dropout: number;
  chunk: number;
  valLoss: number;
  valAccuracy: number;
  epochs: number;
  stage: 'coarse' | 'fine';
}

/**
 * Coarse-then-fine random search over learning rate (log-uniform), hidden size, dropout and chunk
 * length: `coarse` short runs over wide ranges, then `fine` longer runs around the best three.
 */
export async function randomSearch(
  config: Readonly<TrainConfig>,
  data: PreparedData,
  o: { coarse?: number; fine?: number; coarseEpochs?: number; fineEpochs?: number; log: (m: string) => void },
): Promise<Trial[]> {
  const rng = new SeededRandom(config.seed + 99);
  const pick = <T>(xs: readonly T[]) => xs[rng.int(xs.length)]!;
  const logUniform = (lo: number, hi: number) => Math.exp(Math.log(lo) + rng.next() * (Math.log(hi) - Math.log(lo)));
  const trials: Trial[] = [];
  const hasVal = validationSequences(data, config).length > 0;
  if (!hasVal) throw new FramewiseError(ErrorCodes.USAGE, '--search needs a validation set: use --val-split or --val-groups');
  const run = async (t: Omit<Trial, 'valLoss' | 'valAccuracy'>) => {
    const cfg = { ...config, learningRate: t.lr, hidden: t.hidden, dropout: t.dropout, chunk: t.chunk, epochs: t.epochs, patience: 0 };
    const { head, history } = await fit(cfg, data, { log: () => {}, noCheckpoint: true });
    head.dispose();
    const best = history.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    const trial = { ...t, valLoss: best.valLoss, valAccuracy: best.valAccuracy };
    trials.push(trial);
    o.log(
      `${t.stage} ${String(trials.length).padStart(2)}: lr ${t.lr.toExponential(2)} hidden ${t.hidden} dropout ${t.dropout.toFixed(2)} chunk ${t.chunk} -> val loss ${trial.valLoss.toFixed(4)} acc ${(trial.valAccuracy * 100).toFixed(1)}%`,
    );
  };
  for (let i = 0; i < (o.coarse ?? 8); i++) {
    await run({
      lr: logUniform(1e-4, 1e-2),
      hidden: pick([64, 128, 256, 512]),
      dropout: rng.next() * 0.5,
      chunk: pick([8, 16, 32, 64]),
      epochs: o.coarseEpochs ?? 3,
      stage: 'coarse',
    });
  }
  const top = [...trials].sort((a, b) => a.valLoss - b.valLoss).slice(0, 3);
  for (let i = 0; i < (o.fine ?? 4); i++) {
    const base = top[i % top.length]!;
    await run({
      lr: base.lr * logUniform(0.5, 2),
      hidden: base.hidden,
      dropout: Math.min(0.6, Math.max(0, base.dropout + (rng.next() - 0.5) * 0.2)),
      chunk: base.chunk,
      epochs: o.fineEpochs ?? 8,
      stage: 'fine',
    });
  }
  return trials.sort((a, b) => a.valLoss - b.valLoss);
}
