import { expect, test } from 'vitest';
import { editScore } from '../../models/metrics.ts';
import { segmentEdit } from '../../training/score.ts';

const classes = ['a', 'b'];
const p = (c: number, top = 0.9) => Float32Array.from(classes, (_, k) => (k === c ? top : 1 - top));

test("segment Edit scores label's smoothed segments: a one-frame flicker that raw labels show is gone", () => {
  // 20 frames of a, then 20 of b, with one stray b frame inside the a run.
  const truth = Int32Array.from({ length: 40 }, (_, t) => (t < 20 ? 0 : 1));
  const probs = Array.from(truth, (y, t) => p(t === 8 ? 1 : y));
  const raw = Int32Array.from(probs, (q) => (q[0]! > q[1]! ? 0 : 1));
  expect(editScore(raw, truth)).toBeLessThan(1);
  expect(segmentEdit(probs, truth, classes, 10)).toBe(1);
});

test('segment Edit counts unknown segments as errors', () => {
  const truth = new Int32Array(30).fill(0);
  const probs = Array.from(truth, () => p(0, 0.6));
  expect(segmentEdit(probs, truth, classes, 10)).toBe(1);
  const embeddings = probs.map(() => new Float32Array(4));
  expect(segmentEdit(probs, truth, classes, 10, { rule: { below: 0.7 }, embeddings })).toBe(0);
});
