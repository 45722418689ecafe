import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { createHead } from '../../../models/recurrent/head.ts';
import { SeededRandom } from '../../../core/seeded-random.ts';
import { ErrorCodes } from '../../../core/errors.ts';

beforeAll(async () => {
  await ensureBackend();
});

const D = 12,
  C = 4;
function frames(n: number, seed: number): Float32Array[] {
  const rng = new SeededRandom(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: D }, () => rng.normal()));
}
function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  a.forEach((p, t) => p.forEach((v, k) => (d = Math.max(d, Math.abs(v - b[t]![k]!)))));
  return d;
}

describe('recurrent head stepping', () => {
  const grid = (['lstm', 'gru'] as const).flatMap((cell) => [1, 2].map((layers) => [cell, layers] as const));

  test.each(grid)('%s, %i layer(s): chunks of 1, 7, 32 and whole give the same probabilities', (cell, layers) => {
    const head = createHead({ inputDim: D, classes: C, cell, layers, hidden: 10, projection: layers === 2 ? 6 : 0, seed: 5 });
    const seq = frames(70, 1);
    const before = tf.memory().numTensors;
    const whole = head.predict(seq);
    expect(whole).toHaveLength(70);
    for (const chunk of [1, 7, 32]) expect(maxDiff(head.predict(seq, chunk), whole)).toBeLessThan(1e-5);
    // A flat Float32Array input is the same sequence.
    const flat = new Float32Array(70 * D);
    seq.forEach((f, t) => flat.set(f, t * D));
    expect(maxDiff(head.predict(flat, 7), whole)).toBeLessThan(1e-5);
    // Irregular chunk sizes through explicit state.
    let state = head.zeroState();
    const out: Float32Array[] = [];
    for (const [a, b] of [
      [0, 3],
      [3, 4],
      [4, 40],
      [40, 70],
    ]) {
      const r = head.step(state, seq.slice(a, b));
      out.push(...r.probs);
      state = r.state;
    }
    expect(state.frames).toBe(70);
    expect(maxDiff(out, whole)).toBeLessThan(1e-5);
    // The state matters: later frames depend on earlier ones.
    const late = head.predict(seq.slice(35));
    expect(maxDiff(late, whole.slice(35))).toBeGreaterThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
    head.dispose();
  });

  test('a step never mutates the state it was given', () => {
    const head = createHead({ inputDim: D, classes: C, cell: 'lstm', hidden: 8 });
    const s0 = head.zeroState();
    const s1 = head.step(s0, frames(3, 2)).state;
    const copy = s1.layers.map((l) => [l.h.slice(), l.c!.slice()]);
    const a = head.step(s1, frames(2, 3));
    const b = head.step(s1, frames(2, 3));
    expect(maxDiff(a.probs, b.probs)).toBe(0);
    s1.layers.forEach((l, i) => {
      expect(l.h).toEqual(copy[i]![0]);
      expect(l.c).toEqual(copy[i]![1]);
    });
    expect(s0.layers[0]!.h.every((v) => v === 0)).toBe(true);
    head.dispose();
  });

  test.each(['lstm', 'gru'] as const)('%s: a batched step over streams of different lengths equals each stream alone', (cell) => {
    const head = createHead({ inputDim: D, classes: C, cell, layers: 2, hidden: 9, seed: 8 });
    const streams = [frames(20, 10), frames(5, 11), frames(13, 12), frames(1, 13)];
    const alone = streams.map((s) => head.predict(s));
    const before = tf.memory().numTensors;
    let states = streams.map(() => head.zeroState());
    const got: Float32Array[][] = streams.map(() => []);
    // Uneven chunking per call, including streams with no frame in a call.
    for (let t0 = 0; t0 < 20; t0 += 6) {
      const parts = streams.map((s) => s.slice(t0, t0 + 6));
      const r = head.stepBatch(states, parts);
      states = r.states;
      r.probs.forEach((p, b) => got[b]!.push(...p));
    }
    expect(tf.memory().numTensors).toBe(before);
    streams.forEach((s, b) => {
      expect(states[b]!.frames).toBe(s.length);
      expect(maxDiff(got[b]!, alone[b]!)).toBeLessThan(1e-5);
    });
    head.dispose();
  });

  test('the frame-by-frame baseline has no state and is chunking-invariant', () => {
    const head = createHead({ inputDim: D, classes: C, cell: 'none', hidden: 8 });
    expect(head.zeroState().layers).toHaveLength(0);
    const seq = frames(9, 4);
    const whole = head.predict(seq);
    expect(maxDiff(head.predict(seq.slice(4)), whole.slice(4))).toBe(0);
    head.dispose();
  });

  test('initial probabilities are near uniform: loss ≈ ln C', () => {
    for (const classes of [3, 10]) {
      const head = createHead({ inputDim: 64, classes, hidden: 32, seed: 1 });
      const rng = new SeededRandom(2);
      const seq = Array.from({ length: 50 }, () => Float32Array.from({ length: 64 }, () => rng.normal()));
      const probs = head.predict(seq);
      const loss = -probs.reduce((s, p, t) => s + Math.log(p[t % classes]!), 0) / probs.length;
      expect(Math.abs(loss - Math.log(classes)) / Math.log(classes)).toBeLessThan(0.02);
      head.dispose();
    }
  });

  test('bad input: wrong embedding length, foreign state, bad spec, use after dispose', () => {
    const head = createHead({ inputDim: D, classes: C, hidden: 8 });
    expect(() => head.step(head.zeroState(), [new Float32Array(D + 1)])).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    const other = createHead({ inputDim: D, classes: C, hidden: 7 });
    expect(() => head.step(other.zeroState(), frames(1, 1))).toThrow(/does not fit/);
    expect(() => createHead({ inputDim: D, classes: 1 })).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    expect(() => createHead({ inputDim: D, classes: 3, dropout: 1 })).toThrow(/dropout/);
    head.dispose();
    other.dispose();
    expect(() => head.predict(frames(1, 1))).toThrow(/after dispose/);
  });
});

describe('input normalisation (running mean subtracted)', () => {
  test('is carried in the state: chunked and batched stepping equal one pass, and equal normalising by hand', () => {
    const alpha = 0.1;
    const head = createHead({ inputDim: D, classes: C, cell: 'lstm', hidden: 8, seed: 3, inputNorm: alpha });
    const plain = createHead({ inputDim: D, classes: C, cell: 'lstm', hidden: 8, seed: 3 }, head.getWeights());
    const seq = frames(40, 9).map((f) => f.map((v) => v + 5)); // a large constant offset to remove
    const whole = head.predict(seq);
    for (const chunk of [1, 7]) expect(maxDiff(head.predict(seq, chunk), whole)).toBeLessThan(1e-5);
    const { probs } = head.stepBatch([head.zeroState(), head.zeroState()], [seq.slice(0, 13), seq]);
    expect(maxDiff(probs[1]!, whole)).toBeLessThan(1e-5);
    // By hand: m0 = x0, m_t = (1 - a) m_{t-1} + a x_t, input x_t - m_t.
    let m = Float32Array.from(seq[0]!);
    const byHand = seq.map((x, t) => {
      if (t > 0) m = m.map((v, i) => (1 - alpha) * v + alpha * x[i]!);
      return x.map((v, i) => v - m[i]!);
    });
    expect(maxDiff(plain.predict(byHand), whole)).toBeLessThan(1e-5);
    // And it is not a no-op: without it the same weights see other inputs.
    expect(maxDiff(plain.predict(seq), whole)).toBeGreaterThan(1e-3);
    head.dispose();
    plain.dispose();
  });

  test('inputNormDims: only the leading values are normalised (a motion stream after them is left as it is)', () => {
    const alpha = 0.1;
    const keep = D - 2;
    const head = createHead({ inputDim: D, classes: C, hidden: 8, seed: 3, inputNorm: alpha, inputNormDims: keep });
    const plain = createHead({ inputDim: D, classes: C, hidden: 8, seed: 3 }, head.getWeights());
    const seq = frames(20, 4).map((f) => f.map((v) => v + 5));
    let m = Float32Array.from(seq[0]!);
    const byHand = seq.map((x, t) => {
      if (t > 0) m = m.map((v, i) => (1 - alpha) * v + alpha * x[i]!);
      return x.map((v, i) => (i < keep ? v - m[i]! : v));
    });
    const whole = head.predict(seq);
    expect(maxDiff(plain.predict(byHand), whole)).toBeLessThan(1e-5);
    expect(maxDiff(head.predict(seq, 3), whole)).toBeLessThan(1e-5);
    expect(() => createHead({ inputDim: D, classes: C, inputNormDims: D + 1 })).toThrow(/inputNormDims/);
    head.dispose();
    plain.dispose();
  });
});
