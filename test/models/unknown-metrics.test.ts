// `unknown` in the metrics and in the rule: an unknown frame whose truth is a class is an error,
// the share of unknown per class is reported, and the rule's two checks decide as documented.
import { describe, expect, test } from 'vitest';
import { evaluateSequences, predictLabels, UNKNOWN_PRED } from '../../models/metrics.ts';
import { isUnknown, unknownRuleOf } from '../../models/unknown-rule.ts';
import { quantile, thresholdFromProbs, UNKNOWN_QUANTILE_HELD_OUT } from '../../training/unknown-threshold.ts';

const U = UNKNOWN_PRED;

describe('unknown in eval metrics', () => {
  test('unknown on a frame whose truth is a class counts as an error; the share per class is reported', () => {
    const truth = [0, 0, 0, 0, 1, 1, 1, 1];
    const pred = [0, 0, U, U, 1, 1, 1, U];
    const r = evaluateSequences([{ pred, truth }], ['a', 'b']);
    expect(r.frames).toBe(8);
    expect(r.accuracy).toBeCloseTo(5 / 8, 10);
    expect(r.perClass[0]!.recall).toBeCloseTo(0.5, 10);
    expect(r.perClass[0]!.precision).toBe(1); // unknown is never a prediction of a class
    expect(r.perClass[1]!.recall).toBeCloseTo(0.75, 10);
    expect(r.unknown.frames).toBe(3);
    expect(r.unknown.share).toBeCloseTo(3 / 8, 10);
    expect(r.unknown.perClass.map((c) => [c.label, c.frames, c.share])).toEqual([
      ['a', 2, 0.5],
      ['b', 1, 0.25],
    ]);
    expect(r.confusion).toEqual([
      [2, 0],
      [0, 3],
    ]);
    // Unknown stretches are segments of their own: Edit and F1 see them as wrong segments.
    expect(r.edit).toBeLessThan(1);
    const clean = evaluateSequences([{ pred: truth, truth }], ['a', 'b']);
    expect(clean.accuracy).toBe(1);
    expect(clean.unknown.frames).toBe(0);
  });

  test('predictLabels decides as the label stage: below the threshold is unknown, 0 never', () => {
    const probs = [
      [0.9, 0.1],
      [0.55, 0.45],
      [0.3, 0.7],
    ];
    expect(Array.from(predictLabels(probs, 0.6))).toEqual([0, U, 1]);
    expect(Array.from(predictLabels(probs, 0))).toEqual([0, 0, 1]);
  });
});

describe('the unknown rule', () => {
  test('far from every class centroid is unknown whatever the probability; override 0 turns both checks off', () => {
    const meta = {
      unknownBelow: 0.5,
      unknownFar: {
        beyond: [0.1, 0.1],
        centroids: [
          [1, 0, 0],
          [0, 1, 0],
        ],
      },
    };
    const rule = unknownRuleOf(meta);
    expect(isUnknown(rule, 0.99, [0.95, 0.05, 0])).toBe(false);
    expect(isUnknown(rule, 0.99, [0, 0, 1])).toBe(true); // unlike the training data
    expect(isUnknown(rule, 0.4, [1, 0, 0])).toBe(true); // unsure
    expect(isUnknown(unknownRuleOf(meta, 0), 0.01, [0, 0, 1])).toBe(false);
    expect(isUnknown(unknownRuleOf({}), 0.01)).toBe(false); // a bundle without the fields
    // With a motion stream after the embedding, only the appearance part is compared: any motion is fine.
    expect(isUnknown(rule, 0.99, [0.95, 0.05, 0, 0.9, 0.9])).toBe(false);
    expect(isUnknown(rule, 0.99, [0, 0, 1, 0, 0])).toBe(true);
  });

  test('calibration: the threshold leaves the chosen share of correctly labeled frames below it', () => {
    // 100 correct frames with top probabilities 0.50, 0.505, ..., 0.995, and 10 wrong ones.
    const probs = [Array.from({ length: 110 }, (_, t) => (t < 100 ? [0.5 + t * 0.005, 0.5 - t * 0.005] : [0.2, 0.8]))];
    const truths = [Int32Array.from({ length: 110 }, () => 0)];
    const c = thresholdFromProbs(probs, truths, 'validation');
    expect(c.record).toMatchObject({ on: 'validation', quantile: UNKNOWN_QUANTILE_HELD_OUT, correctFrames: 100, frames: 110 });
    const below = probs[0]!.slice(0, 100).filter((p) => p[0]! < c.unknownBelow).length;
    expect(below).toBeGreaterThanOrEqual(1);
    expect(below).toBeLessThanOrEqual(3);
    expect(thresholdFromProbs(probs, truths, 'training').unknownBelow).toBeLessThan(c.unknownBelow);
    expect(thresholdFromProbs([probs[0]!.slice(0, 10)], truths, 'validation').unknownBelow).toBe(0); // too few frames
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
  });
});
