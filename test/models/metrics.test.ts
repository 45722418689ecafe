import { describe, expect, test } from 'vitest';
import {
  argmaxLabels,
  averagePrecision,
  confusionMatrix,
  editScore,
  evaluateSequences,
  f1FromCounts,
  frameAccuracy,
  frameMeanAP,
  labelRuns,
  levenshtein,
  macroF1,
  perClassScores,
  segmentCounts,
} from '../../models/metrics.ts';

// Hand-worked example (see comments for the arithmetic).
const pred = [0, 0, 1, 1, 1, 2, 2, 0];
const truth = [0, 0, 0, 1, 1, 2, 2, 2];

describe('frame metrics', () => {
  test('accuracy: 6 of 8 frames agree; unlabeled frames are skipped', () => {
    expect(frameAccuracy(pred, truth)).toBe(0.75);
    expect(frameAccuracy([1, 0, 0], [1, -1, 1])).toBe(0.5);
    expect(() => frameAccuracy([1], [1, 2])).toThrow(RangeError);
  });

  test('confusion matrix, per-class scores and macro F1', () => {
    const m = confusionMatrix(pred, truth, 3);
    expect(m).toEqual([
      [2, 1, 0],
      [0, 2, 0],
      [1, 0, 2],
    ]);
    const s = perClassScores(m);
    // class 0: P = 2/3, R = 2/3; class 1: P = 2/3, R = 1; class 2: P = 1, R = 2/3
    expect(s[0]!.precision).toBeCloseTo(2 / 3, 12);
    expect(s[1]!.recall).toBe(1);
    expect(s[2]!.precision).toBe(1);
    expect(s[1]!.f1).toBeCloseTo(0.8, 12);
    expect(s.map((x) => x.support)).toEqual([3, 2, 3]);
    expect(macroF1(m)).toBeCloseTo((2 / 3 + 0.8 + 0.8) / 3, 12);
    // A class absent from both truth and prediction does not drag the mean down.
    expect(macroF1(confusionMatrix([0, 1], [0, 1], 3))).toBe(1);
  });

  test('average precision and per-frame mAP', () => {
    // positives at ranks 1 and 3: (1/1 + 2/3) / 2
    expect(averagePrecision([0.9, 0.8, 0.7, 0.6], [true, false, true, false])).toBeCloseTo(5 / 6, 12);
    // a tie counts as one threshold: precision 1/2 for the positive inside it
    expect(averagePrecision([0.5, 0.5], [true, false])).toBe(0.5);
    expect(averagePrecision([0.5], [false])).toBeNaN();
    const probs = [
      [0.9, 0.1],
      [0.6, 0.4],
      [0.3, 0.7],
    ];
    // class 0 positives {0, 2}: ranks by p0 = 0, 1, 2 -> (1 + 2/3) / 2; class 1 positive {1}: p1 ranks 2, 1, 0 -> 1/2
    expect(frameMeanAP(probs, [0, 1, 0], 2)).toBeCloseTo((5 / 6 + 0.5) / 2, 12);
    expect(Array.from(argmaxLabels(probs))).toEqual([0, 0, 1]);
  });
});

describe('segmental metrics (MS-TCN definitions)', () => {
  test('runs and Levenshtein', () => {
    expect(labelRuns(pred)).toEqual([
      { label: 0, start: 0, end: 2 },
      { label: 1, start: 2, end: 5 },
      { label: 2, start: 5, end: 7 },
      { label: 0, start: 7, end: 8 },
    ]);
    expect(labelRuns([3, 3, 0, 3], [3])).toEqual([{ label: 0, start: 2, end: 3 }]);
    expect(levenshtein([0, 1, 2, 0], [0, 1, 2])).toBe(1);
    expect(levenshtein([1, 2, 3], [3, 2, 1])).toBe(2);
    expect(levenshtein([], [1, 2])).toBe(2);
  });

  test('Edit: segments [0,1,2,0] vs [0,1,2] -> 1 - 1/4', () => {
    expect(editScore(pred, truth)).toBe(0.75);
    expect(editScore(truth, truth)).toBe(1);
    // over-segmentation is punished even when almost every frame is right
    expect(editScore([0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0])).toBeCloseTo(1 - 4 / 5, 12);
    // background (class 9) is not a segment
    expect(editScore([9, 1, 1, 1, 9], [9, 9, 1, 1, 9], [9])).toBe(1);
  });

  test('F1@k: IoUs 2/3, 2/3, 2/3 and one stray segment', () => {
    // three matches at IoU 2/3, the trailing 0-segment overlaps no 0-segment: tp 3, fp 1, fn 0
    expect(segmentCounts(pred, truth, 0.5)).toEqual({ tp: 3, fp: 1, fn: 0 });
    expect(f1FromCounts({ tp: 3, fp: 1, fn: 0 })).toBeCloseTo((2 * 0.75 * 1) / 1.75, 12);
    // above 2/3 nothing matches
    expect(segmentCounts(pred, truth, 0.7)).toEqual({ tp: 0, fp: 4, fn: 3 });
    expect(f1FromCounts({ tp: 0, fp: 4, fn: 3 })).toBe(0);
    // one true segment can be matched once only
    expect(segmentCounts([1, 1, 0, 1, 1], [1, 1, 1, 1, 1], 0.1)).toEqual({ tp: 1, fp: 2, fn: 0 });
  });

  test('evaluateSequences sums segment counts over videos and averages Edit per video', () => {
    const r = evaluateSequences(
      [
        { pred, truth, probs: pred.map((p) => [0, 1, 2].map((c) => (c === p ? 0.8 : 0.1))) },
        {
          pred: [1, 1, 1],
          truth: [1, 1, 1],
          probs: [
            [0.1, 0.8, 0.1],
            [0.1, 0.8, 0.1],
            [0.1, 0.8, 0.1],
          ],
        },
      ],
      ['a', 'b', 'c'],
    );
    expect(r.frames).toBe(11);
    expect(r.accuracy).toBeCloseTo(9 / 11, 12);
    expect(r.edit).toBeCloseTo((0.75 + 1) / 2, 12);
    // tp 3 + 1, fp 1, fn 0 at 50%
    expect(r.f1['50']).toBeCloseTo((2 * 0.8 * 1) / 1.8, 12);
    expect(r.f1['10']).toBeCloseTo(r.f1['50'], 12);
    expect(r.perClass.map((c) => c.label)).toEqual(['a', 'b', 'c']);
    expect(r.confusion[1]![1]).toBe(5);
    expect(r.mAP).toBeGreaterThan(0);
    expect(r.mAP).toBeLessThanOrEqual(1);
  });
});
