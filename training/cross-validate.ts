// Picks the number of training epochs by k-fold cross-validation: one run per fold on the other
// folds' clips, each validated after every epoch on its held-out clips; the per-epoch validation
// losses are averaged over folds (every clip counts once), and the epoch where that mean is lowest
// wins. The final bundle is then trained on all clips for that many epochs, so no clip is spent on
// a validation split and no single lucky epoch of a tiny split decides.
import { groupOf } from './dataset.ts';
import type { TrainConfig } from './config.ts';
import { crossValidationFolds, type FoldPlan } from './folds.ts';
import { fit, type EpochRecord } from './fit.ts';
import type { PreparedData } from './prepare.ts';
import { evaluatePass } from '../models/recurrent/evaluate.ts';

export interface CrossValidation {
  by: FoldPlan['by'];
  folds: number;
  /** Per epoch (index 0 = epoch 1): validation loss and frame accuracy, averaged over folds. */
  valLoss: number[];
  valAccuracy: number[];
  /** The chosen number of epochs (1-based). */
  epochs: number;
  /** Each fold's own curves. */
  histories: EpochRecord[][];
  /** Every clip once, as the head of the fold that held it out labels it: what new clips look like to a head. */
  heldOut: { probs: Float32Array[][]; truths: Int32Array[] };
}

export async function crossValidateEpochs(config: Readonly<TrainConfig>, data: PreparedData, log: (m: string) => void): Promise<CrossValidation | undefined> {
  const items = data.train.map((views) => {
    const labels = views[0]!.labels;
    const single = labels.every((l) => l === labels[0]);
    return { name: views[0]!.name, label: single ? labels[0] : undefined };
  });
  const groupBy = config.groupBy ? new RegExp(config.groupBy) : undefined;
  const plan = crossValidationFolds(items, { folds: config.folds, seed: config.seed, groupBy });
  if (plan.folds.length < 2) return undefined;
  const losses: number[][] = [];
  const accuracies: number[][] = [];
  const histories: EpochRecord[][] = [];
  const heldOut = { probs: [] as Float32Array[][], truths: [] as Int32Array[] };
  for (const [f, fold] of plan.folds.entries()) {
    const subset: PreparedData = {
      ...data,
      train: fold.train.map((i) => data.train[i]!),
      val: fold.val.map((i) => [data.train[i]![0]!]),
    };
    const { head, history } = await fit({ ...config, patience: 0 }, subset, { log: () => {}, noCheckpoint: true });
    const clips = subset.val.map((v) => v[0]!);
    try {
      heldOut.probs.push(
        ...evaluatePass(
          head,
          clips.map((v) => ({ frames: v.embeddings })),
        ).probs,
      );
    } finally {
      head.dispose();
    }
    heldOut.truths.push(...clips.map((v) => v.labels));
    histories.push(history);
    losses.push(history.map((h) => h.valLoss));
    accuracies.push(history.map((h) => h.valAccuracy));
    const held = fold.val.map((i) => (groupBy ? groupOf(items[i]!.name, groupBy) : items[i]!.name));
    const best = history.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    log(
      `cross-validation fold ${f + 1}/${plan.folds.length} (${plan.by}s held out: ${[...new Set(held)].join(', ')}): best val loss ${best.valLoss.toFixed(4)} at epoch ${best.epoch}`,
    );
  }
  const mean = (rows: number[][]) => rows[0]!.map((_, e) => rows.reduce((s, r) => s + r[e]!, 0) / rows.length);
  const valLoss = mean(losses);
  const valAccuracy = mean(accuracies);
  const epochs = valLoss.indexOf(Math.min(...valLoss)) + 1;
  log(
    `cross-validation over ${plan.folds.length} ${plan.by}-level folds: ${epochs} epochs (mean val loss ${valLoss[epochs - 1]!.toFixed(4)}, val acc ${(valAccuracy[epochs - 1]! * 100).toFixed(1)}%)`,
  );
  return { by: plan.by, folds: plan.folds.length, valLoss, valAccuracy, epochs, histories, heldOut };
}
