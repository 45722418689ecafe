// Memory matters: tasks no single frame can solve. Seeds are fixed; training is small enough for
// a few seconds per head on a shared 2-core machine.
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { chunkBatches } from '../../../models/recurrent/chunk-feeder.ts';
import { evaluatePass } from '../../../models/recurrent/evaluate.ts';
import { createHead, type RecurrentHead } from '../../../models/recurrent/head.ts';
import { SeededRandom } from '../../../core/seeded-random.ts';
import type { CellType } from '../../../models/recurrent/state.ts';
import { createTrainer } from '../../../models/recurrent/trainer.ts';
import { cueSequences, lightSequences, type TaskSequence } from './synthetic-tasks.ts';

beforeAll(async () => {
  await ensureBackend();
});

const D = 8;

function train(o: { cell: CellType; classes: number; data: TaskSequence[]; epochs: number; chunk: number; resetEveryChunk?: boolean }): RecurrentHead {
  const head = createHead({ inputDim: D, classes: o.classes, cell: o.cell, hidden: 16, dropout: 0, seed: 2 });
  const trainer = createTrainer(head, { batch: 8, schedule: { learningRate: 0.02 }, clip: 1 });
  const rng = new SeededRandom(2);
  for (let e = 0; e < o.epochs; e++) {
    for (const { chunk, reset } of chunkBatches(o.data, { batch: 8, chunk: o.chunk, dim: D, rng })) {
      // Reset-per-chunk = no state carried across chunk boundaries (the ablation).
      trainer.resetSlots(o.resetEveryChunk ? undefined : reset);
      trainer.step(chunk);
    }
  }
  trainer.dispose();
  return head;
}

/** Streaming accuracy (zero state per sequence, as live use) over the frames `keep` selects. */
function accuracy(head: RecurrentHead, data: TaskSequence[], keep: (s: TaskSequence, t: number) => boolean): number {
  const { probs } = evaluatePass(
    head,
    data.map((s) => ({ frames: s.frames })),
  );
  let correct = 0;
  let n = 0;
  data.forEach((s, i) =>
    probs[i]!.forEach((p, t) => {
      if (!keep(s, t)) return;
      n++;
      if (p.indexOf(Math.max(...p)) === s.labels[t]) correct++;
    }),
  );
  return correct / n;
}

/** The best accuracy any function of the single frame's observation can reach on this data. */
function singleFrameBound(data: TaskSequence[], keep: (s: TaskSequence, t: number) => boolean): number {
  const counts = new Map<string, number>();
  let n = 0;
  for (const s of data) {
    s.labels.forEach((y, t) => {
      if (!keep(s, t)) return;
      n++;
      const key = `${s.observation[t]}:${y}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    });
  }
  const best = new Map<number, number>();
  for (const [key, c] of counts) {
    const o = Number(key.split(':')[0]);
    best.set(o, Math.max(best.get(o) ?? 0, c));
  }
  return [...best.values()].reduce((a, b) => a + b, 0) / n;
}

describe('memory matters', () => {
  test('blinking vs steady vs off: the LSTM head solves it, a frame-by-frame classifier cannot', () => {
    const trainData = lightSequences(32, { dim: D, seed: 1 });
    const testData = lightSequences(16, { dim: D, seed: 2 });
    const afterWarmup = (s: TaskSequence, t: number) => s.age[t]! >= 6;
    const bound = singleFrameBound(testData, afterWarmup);
    expect(bound).toBeLessThan(0.75); // the task really is ambiguous frame by frame

    const lstm = train({ cell: 'lstm', classes: 3, data: trainData, epochs: 6, chunk: 16 });
    const frameOnly = train({ cell: 'none', classes: 3, data: trainData, epochs: 6, chunk: 16 });
    const lstmAcc = accuracy(lstm, testData, afterWarmup);
    const frameAcc = accuracy(frameOnly, testData, afterWarmup);
    expect(lstmAcc).toBeGreaterThanOrEqual(0.95);
    expect(frameAcc).toBeLessThanOrEqual(bound + 0.03);
    lstm.dispose();
    frameOnly.dispose();
  });

  test('a dependency longer than the chunk is learned only when state is carried across chunks', () => {
    const k = 4;
    const trainData = cueSequences(32, { dim: D, seed: 1 });
    const testData = cueSequences(16, { dim: D, seed: 2 });
    // Frames more than k after their cue: the cue was always in an earlier chunk during training.
    const far = (s: TaskSequence, t: number) => s.age[t]! > k;
    const carried = train({ cell: 'lstm', classes: 2, data: trainData, epochs: 6, chunk: k });
    const reset = train({ cell: 'lstm', classes: 2, data: trainData, epochs: 6, chunk: k, resetEveryChunk: true });
    const carriedAcc = accuracy(carried, testData, far);
    const resetAcc = accuracy(reset, testData, far);
    expect(carriedAcc).toBeGreaterThanOrEqual(0.95);
    expect(resetAcc).toBeLessThan(0.85);
    expect(carriedAcc - resetAcc).toBeGreaterThan(0.1);
    carried.dispose();
    reset.dispose();
  });
});
