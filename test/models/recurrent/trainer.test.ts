import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { chunkBatches } from '../../../models/recurrent/chunk-feeder.ts';
import { clipByGlobalNorm } from '../../../models/recurrent/clip.ts';
import { evaluatePass } from '../../../models/recurrent/evaluate.ts';
import { createHead } from '../../../models/recurrent/head.ts';
import { AdamW } from '../../../models/recurrent/optimizer.ts';
import { learningRateSchedule } from '../../../models/recurrent/schedule.ts';
import { SeededRandom } from '../../../core/seeded-random.ts';
import { createTrainer, type TrainChunk } from '../../../models/recurrent/trainer.ts';
import { ErrorCodes } from '../../../core/errors.ts';

beforeAll(async () => {
  await ensureBackend();
});

const D = 6,
  C = 3,
  B = 4,
  K = 5;
function randomChunk(seed: number): TrainChunk {
  const rng = new SeededRandom(seed);
  return {
    steps: K,
    inputs: Float32Array.from({ length: B * K * D }, () => rng.normal()),
    labels: Int32Array.from({ length: B * K }, () => rng.int(C)),
  };
}

describe('global-norm clipping', () => {
  test('matches a hand computation: g <- min(1, λ/||g||) g', () => {
    const before = tf.memory().numTensors;
    const g = [
      tf.tensor([3, 0]),
      tf.tensor([
        [0, 4],
        [0, 0],
      ]),
    ]; // ||g|| = 5
    const r = clipByGlobalNorm(g, 1);
    expect(r.norm).toBeCloseTo(5, 6);
    expect(r.scale).toBeCloseTo(0.2, 6);
    expect(Array.from(r.grads[0]!.dataSync())).toEqual([expect.closeTo(0.6, 6), 0]);
    expect(Array.from(r.grads[1]!.dataSync())).toEqual([0, expect.closeTo(0.8, 6), 0, 0]);
    const loose = clipByGlobalNorm(g, 10); // under the threshold: unchanged
    expect(loose.scale).toBe(1);
    expect(Array.from(loose.grads[1]!.dataSync())).toEqual([0, 4, 0, 0]);
    for (const t of [...g, ...r.grads, ...loose.grads]) t.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('learning-rate schedule', () => {
  test('linear warm-up, then cosine or linear decay to the floor', () => {
    const cos = learningRateSchedule({ learningRate: 1, warmupSteps: 4, totalSteps: 14, decay: 'cosine', minLearningRate: 0 });
    expect([0, 1, 2, 3].map(cos)).toEqual([0.25, 0.5, 0.75, 1]);
    expect(cos(4)).toBe(1);
    expect(cos(9)).toBeCloseTo(0.5, 12);
    expect(cos(14)).toBeCloseTo(0, 12);
    expect(cos(100)).toBeCloseTo(0, 12);
    const lin = learningRateSchedule({ learningRate: 2, totalSteps: 10, decay: 'linear', minLearningRate: 0 });
    expect(lin(5)).toBeCloseTo(1, 12);
    expect(learningRateSchedule({ learningRate: 3 })(1000)).toBe(3);
  });
});

describe('AdamW', () => {
  test('first step moves each weight by lr·sign(g); decoupled decay shrinks kernels only', () => {
    const p = [tf.variable(tf.tensor([1, -1])), tf.variable(tf.tensor([2]))];
    const opt = new AdamW(p, ['layer/kernel', 'layer/bias'], { weightDecay: 0.5 });
    const g = [tf.tensor([0.3, -7]), tf.tensor([0.01])];
    opt.apply(g, 0.1);
    // Adam's first step is lr * g/|g| (up to eps); decay subtracts lr * wd * p from the kernel.
    expect(Array.from(p[0]!.dataSync())).toEqual([expect.closeTo(1 - 0.1 - 0.05, 5), expect.closeTo(-1 + 0.1 + 0.05, 5)]);
    expect(p[1]!.dataSync()[0]).toBeCloseTo(2 - 0.1, 5);
    const state = opt.getState();
    expect(state.step).toBe(1);
    expect(state.m[0]![1]).toBeCloseTo(-0.7, 5);
    for (const t of [...p, ...g]) t.dispose();
    opt.dispose();
  });
});

describe('TBPTT trainer', () => {
  test('step record, carried state, slot reset, no tensor leak', () => {
    const head = createHead({ inputDim: D, classes: C, hidden: 8, seed: 3 });
    const trainer = createTrainer(head, { batch: B, schedule: { learningRate: 0.01, warmupSteps: 2 } });
    const before = tf.memory().numTensors;
    const r = trainer.step(randomChunk(1));
    expect(tf.memory().numTensors).toBe(before);
    expect(r).toMatchObject({ step: 1, lr: 0.005, frames: B * K });
    expect(Math.abs(r.loss - Math.log(C))).toBeLessThan(0.1);
    expect(r.gradNorm).toBeGreaterThan(0);
    expect(r.accuracy).toBeGreaterThanOrEqual(0);
    expect(trainer.slots.every((s) => s.frames === K && s.layers[0]!.h.some((v) => v !== 0))).toBe(true);
    trainer.resetSlots([1]);
    expect(trainer.slots[1]!.frames).toBe(0);
    expect(trainer.slots[0]!.frames).toBe(K);
    const r2 = trainer.step(randomChunk(2));
    expect(r2.step).toBe(2);
    expect(r2.lr).toBe(0.01);
    expect(trainer.slots.map((s) => s.frames)).toEqual([2 * K, K, 2 * K, 2 * K]);
    expect(tf.memory().numTensors).toBe(before);
    trainer.dispose();
    head.dispose();
  });

  test('masked frames do not count: a fully masked slot gives the same loss as leaving it out', () => {
    const head = createHead({ inputDim: D, classes: C, hidden: 8, seed: 3, dropout: 0 });
    const chunk = randomChunk(4);
    const masked = { ...chunk, mask: Uint8Array.from({ length: B * K }, (_, i) => (i < K ? 0 : 1)) };
    const negative = { ...chunk, labels: Int32Array.from(chunk.labels as Int32Array, (y, i) => (i < K ? -1 : y)) };
    const initial = head.getWeights();
    const ta = createTrainer(head, { batch: B });
    const a = ta.step(masked);
    head.setWeights(initial);
    const tb = createTrainer(head, { batch: B });
    const b = tb.step(negative);
    ta.dispose();
    tb.dispose();
    expect(a.frames).toBe((B - 1) * K);
    expect(a.loss).toBeCloseTo(b.loss, 6);
    head.dispose();
  });

  test('fixed seeds give repeatable runs; another seed gives another run', () => {
    const run = (seed: number) => {
      const head = createHead({ inputDim: D, classes: C, hidden: 8, seed, dropout: 0.3 });
      const trainer = createTrainer(head, { batch: B, schedule: { learningRate: 0.01 } });
      const losses = [1, 2, 3].map((s) => trainer.step(randomChunk(s)).loss);
      const w = head.getWeights()[0]!.values;
      trainer.dispose();
      head.dispose();
      return { losses, w };
    };
    const a = run(7);
    const b = run(7);
    expect(b.losses).toEqual(a.losses);
    expect(b.w).toEqual(a.w);
    expect(run(8).losses).not.toEqual(a.losses);
  });

  test('overfits a few sequences to ~100% training accuracy (the --overfit check)', () => {
    const rng = new SeededRandom(5);
    const seqs = Array.from({ length: 4 }, () => {
      const n = 30;
      return {
        frames: Array.from({ length: n }, () => Float32Array.from({ length: D }, () => rng.normal())),
        labels: Int32Array.from({ length: n }, () => rng.int(C)),
      };
    });
    const head = createHead({ inputDim: D, classes: C, hidden: 24, dropout: 0, seed: 1 });
    const trainer = createTrainer(head, { batch: 4, schedule: { learningRate: 0.02 } });
    for (let e = 0; e < 40; e++) {
      for (const { chunk, reset } of chunkBatches(seqs, { batch: 4, chunk: 10, dim: D })) {
        trainer.resetSlots(reset);
        trainer.step(chunk);
      }
    }
    const r = evaluatePass(head, seqs);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.97);
    expect(r.loss).toBeLessThan(0.3);
    trainer.dispose();
    head.dispose();
  });

  test('bad chunks are usage errors', () => {
    const head = createHead({ inputDim: D, classes: C, hidden: 8 });
    const trainer = createTrainer(head, { batch: B });
    expect(() => trainer.step({ ...randomChunk(1), steps: K + 1 })).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    expect(() => trainer.step({ ...randomChunk(1), labels: new Int32Array(B * K).fill(C) })).toThrow(/out of range/);
    expect(() => trainer.resetSlots([B])).toThrow(/no slot/);
    trainer.dispose();
    head.dispose();
  });
});

describe('chunkBatches', () => {
  test('each sequence once, padded and masked at its end, slots reset when a new one starts', () => {
    const seq = (n: number, label: number) => ({ frames: new Float32Array(n * 2).fill(label), labels: new Int32Array(n).fill(label) });
    const items = [...chunkBatches([seq(5, 1), seq(2, 2), seq(3, 3)], { batch: 2, chunk: 3, dim: 2 })];
    expect(items.map((i) => i.reset)).toEqual([[0, 1], [1]]);
    // slot 0 plays the 5-frame sequence: 3 + 2 (+1 padding); slot 1 plays 2 (+1 pad) then 3
    expect(Array.from(items[0]!.chunk.labels)).toEqual([1, 1, 1, 2, 2, -1]);
    expect(Array.from(items[1]!.chunk.labels)).toEqual([1, 1, -1, 3, 3, 3]);
    expect(Array.from(items[1]!.chunk.mask as Uint8Array)).toEqual([1, 1, 0, 1, 1, 1]);
  });
});

test('with input normalisation, training chunks see the inputs inference sees (mean carried across chunks)', () => {
  const rng = new SeededRandom(4);
  const seq = {
    frames: Array.from({ length: 23 }, () => Float32Array.from({ length: D }, () => 3 + rng.normal())),
    labels: Int32Array.from({ length: 23 }, (_, t) => t % C),
  };
  const head = createHead({ inputDim: D, classes: C, hidden: 7, dropout: 0, seed: 2, inputNorm: 0.2 });
  const expected = evaluatePass(head, [seq]).loss;
  // A vanishing learning rate: the weights stay put, so chunk losses must add up to the pass's loss.
  const trainer = createTrainer(head, { batch: 1, schedule: () => 1e-30, clip: 0 });
  let sum = 0;
  let frames = 0;
  for (const item of chunkBatches([seq], { batch: 1, chunk: 5, dim: D })) {
    if (item.reset.length) trainer.resetSlots(item.reset);
    const r = trainer.step(item.chunk);
    sum += r.loss * r.frames;
    frames += r.frames;
  }
  expect(frames).toBe(23);
  expect(sum / frames).toBeCloseTo(expected, 5);
  trainer.dispose();
  head.dispose();
});
