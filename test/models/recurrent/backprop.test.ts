// The hand-written BPTT gradients must equal tfjs autodiff of the inference forward pass.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { chunkGradients } from '../../../models/recurrent/backprop.ts';
import { createHead, type HeadOptions } from '../../../models/recurrent/head.ts';
import { SeededRandom } from '../../../core/seeded-random.ts';
import { zeroState } from '../../../models/recurrent/state.ts';

beforeAll(async () => {
  await ensureBackend();
});

const cases: [string, Partial<HeadOptions>][] = [
  ['lstm 1 layer', { cell: 'lstm', layers: 1 }],
  ['lstm 2 layers + projection', { cell: 'lstm', layers: 2, projection: 5 }],
  ['gru 1 layer', { cell: 'gru', layers: 1 }],
  ['gru 2 layers + projection', { cell: 'gru', layers: 2, projection: 5 }],
  ['none (frame-by-frame)', { cell: 'none', layers: 2, projection: 5 }],
];

describe('chunkGradients', () => {
  test.each(cases)('%s: equals tf.variableGrads on head.forward (with dropout, mask, carried state)', (_, opts) => {
    const D = 7,
      C = 3,
      T = 5,
      B = 2;
    const head = createHead({ inputDim: D, classes: C, hidden: 6, dropout: 0.4, seed: 3, ...opts });
    const rng = new SeededRandom(9);
    const N = T * B;
    const x = Float32Array.from({ length: N * D }, () => rng.normal());
    const onehot = new Float32Array(N * C);
    const mask = new Float32Array(N);
    for (let r = 0; r < N; r++) {
      if (r === N - 1) continue; // one padded frame
      onehot[r * C + rng.int(C)] = 1;
      mask[r] = 1;
    }
    const dropout = Float32Array.from({ length: N * head.dropoutWidth }, () => (rng.next() < 0.4 ? 0 : 1 / 0.6));
    // A non-zero incoming state, as in the middle of a sequence.
    const s0 = zeroState(head.spec);
    const state = {
      ...s0,
      layers: s0.layers.map((l) => ({
        h: l.h.map(() => rng.normal() * 0.5),
        ...(l.c ? { c: l.c.map(() => rng.normal() * 0.5) } : {}),
      })),
    };
    const before = tf.memory().numTensors;
    const [mine, ref] = tf.tidy(() => {
      const xt = tf.tensor2d(x, [N, D]);
      const oh = tf.tensor2d(onehot, [N, C]);
      const mk = tf.tensor2d(mask, [N, 1]);
      const dm = tf.tensor2d(dropout, [N, head.dropoutWidth]);
      const stacked = head.stackStates([state, state].map((s, b) => (b === 0 ? s : head.zeroState())));
      const r = chunkGradients(head, { x: xt, onehot: oh, mask: mk, T, B, dropoutMask: dm }, stacked);
      const auto = tf.variableGrads(() => {
        const { logits } = head.forward(xt, T, B, stacked, dm);
        return tf.div(tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), oh))), tf.sum(mk)) as tf.Scalar;
      }, head.variables as tf.Variable[]);
      const refGrads = head.variables.map((v) => auto.grads[v.name]!);
      return [[r.loss, ...r.grads].map((t) => t.arraySync()), [auto.value, ...refGrads].map((t) => t.arraySync())];
    });
    expect(tf.memory().numTensors).toBe(before);
    const flat = (a: unknown): number[] => (Array.isArray(a) ? a.flatMap(flat) : [a as number]);
    mine.forEach((m, k) => {
      const a = flat(m);
      const b = flat(ref[k]);
      expect(a.length).toBe(b.length);
      const scale = Math.max(1e-3, ...b.map(Math.abs));
      const err = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
      expect(err / scale, `${k === 0 ? 'loss' : head.weightNames()[k - 1]}`).toBeLessThan(1e-4);
    });
    head.dispose();
  });
});
