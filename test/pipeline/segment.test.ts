import { describe, expect, test } from 'vitest';
import { FramewiseError } from '../../core/errors.ts';
import { resolveSmoothing, Segmenter, segmentLabels, SMOOTHING_DEFAULTS, type SmoothingOptions } from '../../pipeline/segment.ts';
import type { FrameLabel, Segment } from '../../core/types.ts';
import { labelsFromProbs, labelsFromString, randomLabels } from '../helpers/frame-labels.ts';

const ABC = ['A', 'B', 'C'];
const RAW: SmoothingOptions = { windowFrames: 1, hysteresisFrames: 1, margin: 0, minSegmentMs: 0 };

const brief = (segs: Segment[]) => segs.map((s) => `${s.label}[${s.startFrame},${s.endFrame})`).join(' ');

function streamed(labels: FrameLabel[], classes: readonly string[], options: SmoothingOptions, endMs?: number) {
  const seg = new Segmenter(classes, options);
  const early: Segment[] = [];
  for (const l of labels) early.push(...seg.push(l));
  return { early, all: [...early, ...seg.flush(endMs)] };
}

describe('segmentLabels', () => {
  test('without smoothing, segments are the runs of argmax, with exclusive ends in frames and ms', () => {
    const labels = labelsFromString(ABC, 'AAABBC');
    const segs = segmentLabels(labels, ABC, RAW);
    expect(brief(segs)).toBe('A[0,3) B[3,5) C[5,6)');
    expect(segs.map((s) => [s.startMs, s.endMs])).toEqual([
      [0, 300],
      [300, 500],
      [500, 600], // last frame lasts one frame interval by default
    ]);
    expect(segs[0].score).toBeCloseTo(0.8, 6);
    expect(segmentLabels(labels, ABC, { ...RAW, endMs: 640 }).at(-1)!.endMs).toBe(640);
  });

  test('a blip shorter than minSegmentMs is merged into its neighbour; the score is the mean over all frames', () => {
    const labels = labelsFromString(ABC, 'AAAAABAAAAA');
    const segs = segmentLabels(labels, ABC, { ...RAW, minSegmentMs: 300 });
    expect(brief(segs)).toBe('A[0,11)');
    // Ten frames at 0.8 and the blip frame where A has 0.1.
    expect(segs[0].score).toBeCloseTo((10 * 0.8 + 0.1) / 11, 6);
    // The same blip survives when it is long enough.
    expect(brief(segmentLabels(labelsFromString(ABC, 'AAAAABBBAAAAA'), ABC, { ...RAW, minSegmentMs: 300 }))).toBe('A[0,5) B[5,8) A[8,13)');
  });

  test('a short run between two labels goes to the neighbour more probable over its frames', () => {
    const a = [0.8, 0.1, 0.1];
    const b = [0.1, 0.8, 0.1];
    const toB = labelsFromProbs(ABC, [a, a, a, a, [0.1, 0.4, 0.5], b, b, b, b]);
    expect(brief(segmentLabels(toB, ABC, { ...RAW, minSegmentMs: 200 }))).toBe('A[0,4) B[4,9)');
    const toA = labelsFromProbs(ABC, [a, a, a, a, [0.4, 0.1, 0.5], b, b, b, b]);
    expect(brief(segmentLabels(toA, ABC, { ...RAW, minSegmentMs: 200 }))).toBe('A[0,5) B[5,9)');
  });

  test('a short first run joins the next one, a short last run the previous one', () => {
    expect(brief(segmentLabels(labelsFromString(ABC, 'CAAAAAB'), ABC, { ...RAW, minSegmentMs: 200 }))).toBe('A[0,7)');
  });

  test('a stream shorter than minSegmentMs still yields its segment', () => {
    expect(brief(segmentLabels(labelsFromString(ABC, 'AAB'), ABC, { ...RAW, minSegmentMs: 5000 }))).toBe('A[0,3)');
  });

  test('hysteresis: a challenger must lead for K frames; the boundary is where it began', () => {
    const opts = { ...RAW, hysteresisFrames: 3 };
    expect(brief(segmentLabels(labelsFromString(ABC, 'AAAABBAAAA'), ABC, opts))).toBe('A[0,10)');
    expect(brief(segmentLabels(labelsFromString(ABC, 'AAAABBBAAAA'), ABC, opts))).toBe('A[0,4) B[4,7) A[7,11)');
    // A streak interrupted by a third class restarts.
    expect(brief(segmentLabels(labelsFromString(ABC, 'AAAABBCBBAAAA'), ABC, opts))).toBe('A[0,13)');
  });

  test('hysteresis margin: a lead smaller than the margin does not switch', () => {
    const close = labelsFromProbs(ABC, [[0.8, 0.1, 0.1], ...Array.from({ length: 6 }, () => [0.42, 0.48, 0.1])]);
    expect(brief(segmentLabels(close, ABC, { ...RAW, margin: 0.1 }))).toBe('A[0,7)');
    expect(brief(segmentLabels(close, ABC, { ...RAW, margin: 0.05 }))).toBe('A[0,1) B[1,7)');
  });

  test('the moving average removes a one-frame spike that beats its neighbours only on its own', () => {
    const a = [0.9, 0.05, 0.05];
    const spike = labelsFromProbs(ABC, [a, a, a, [0.35, 0.6, 0.05], a, a, a]);
    expect(brief(segmentLabels(spike, ABC, RAW))).toBe('A[0,3) B[3,4) A[4,7)');
    expect(brief(segmentLabels(spike, ABC, { ...RAW, windowFrames: 3 }))).toBe('A[0,7)');
  });

  test('raw probabilities are never changed by smoothing', () => {
    const labels = randomLabels(ABC, 200, 7);
    const before = labels.map((l) => Array.from(l.probs));
    segmentLabels(labels, ABC, { windowFrames: 5, hysteresisFrames: 3, margin: 0.1, minSegmentMs: 800 });
    expect(labels.map((l) => Array.from(l.probs))).toEqual(before);
  });

  test('defaults are documented values and options are range-checked without mutating the input', () => {
    expect(resolveSmoothing()).toEqual(SMOOTHING_DEFAULTS);
    const mine = { hysteresisFrames: 5 };
    expect(resolveSmoothing(mine).hysteresisFrames).toBe(5);
    expect(mine).toEqual({ hysteresisFrames: 5 });
    for (const bad of [{ windowFrames: 2 }, { hysteresisFrames: 0 }, { margin: 1.5 }, { minSegmentMs: -1 }]) {
      expect(() => resolveSmoothing(bad)).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    }
  });
});

describe('Segmenter (streaming)', () => {
  const configs: SmoothingOptions[] = [
    RAW,
    {},
    { windowFrames: 3, hysteresisFrames: 2, margin: 0.05, minSegmentMs: 300 },
    { windowFrames: 5, hysteresisFrames: 4, margin: 0.1, minSegmentMs: 1000 },
    { windowFrames: 1, hysteresisFrames: 1, margin: 0, minSegmentMs: 700 },
  ];

  test.each(configs.map((c, i) => [i, c] as const))('config %i: streaming equals batch on random sequences, and segments tile the frames', (_, options) => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const labels = randomLabels(ABC, 300, seed);
      const batch = segmentLabels(labels, ABC, { ...options, endMs: 30_050 });
      const { early, all } = streamed(labels, ABC, options, 30_050);
      expect(all).toEqual(batch);
      // Output is incremental, not all at flush.
      if (batch.length > 2) expect(early.length).toBeGreaterThan(0);
      // Tiling: contiguous, exclusive ends, neighbours differ, each at least the minimum length.
      expect(batch[0].startFrame).toBe(0);
      expect(batch.at(-1)!.endFrame).toBe(300);
      expect(batch.at(-1)!.endMs).toBe(30_050);
      for (let i = 0; i < batch.length; i++) {
        const s = batch[i];
        expect(s.endFrame).toBeGreaterThan(s.startFrame);
        expect(s.startMs).toBe(labels[s.startFrame].timestampMs);
        if (i > 0) {
          expect(s.startFrame).toBe(batch[i - 1].endFrame);
          expect(s.startMs).toBe(batch[i - 1].endMs);
          expect(s.label).not.toBe(batch[i - 1].label);
        }
        if (s.endFrame < 300) expect(s.endMs).toBe(labels[s.endFrame].timestampMs);
        expect(s.endMs - s.startMs).toBeGreaterThanOrEqual(resolveSmoothing(options).minSegmentMs);
        const k = ABC.indexOf(s.label);
        const mean = labels.slice(s.startFrame, s.endFrame).reduce((a, l) => a + l.probs[k], 0) / (s.endFrame - s.startFrame);
        expect(s.score).toBeCloseTo(mean, 6);
      }
    }
  });

  test('smoothing makes fewer segments than the raw argmax on noisy input', () => {
    const labels = randomLabels(ABC, 300, 11);
    expect(segmentLabels(labels, ABC).length).toBeLessThan(segmentLabels(labels, ABC, RAW).length / 2);
  });

  test('rejects frames out of order, wrong probability counts, and pushes after flush', () => {
    const [f0, f1] = labelsFromString(ABC, 'AB');
    const seg = new Segmenter(ABC, RAW);
    seg.push(f1);
    expect(() => seg.push(f0)).toThrow(FramewiseError);
    expect(() => seg.push({ ...f1, index: 5, timestampMs: 900, probs: new Float32Array(2) })).toThrow(expect.objectContaining({ code: 'E_MODEL_INVALID' }));
    seg.flush();
    expect(() => seg.push({ ...f1, index: 9, timestampMs: 2000 })).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(new Segmenter(ABC).flush()).toEqual([]);
  });
});

describe('unknown frames in segments', () => {
  test('a stretch of unknown frames becomes an unknown segment scored by its mean top probability', () => {
    const classes = ['a', 'b'];
    const frames = Array.from({ length: 30 }, (_, i) => {
      const unknown = i >= 10 && i < 20;
      const probs = Float32Array.from(unknown ? [0.55, 0.45] : [0.9, 0.1]);
      return { streamId: 's', index: i, timestampMs: i * 100, label: unknown ? 'unknown' : 'a', score: probs[0]!, probs };
    });
    const segs = segmentLabels(frames, classes, { hysteresisFrames: 1, minSegmentMs: 0 });
    expect(segs.map((s) => [s.label, s.startFrame, s.endFrame])).toEqual([
      ['a', 0, 10],
      ['unknown', 10, 20],
      ['a', 20, 30],
    ]);
    expect(segs[1]!.score).toBeCloseTo(0.55, 5);
    // The same probabilities labeled without the threshold: one segment.
    const plain = segmentLabels(
      frames.map((f) => ({ ...f, label: 'a' })),
      classes,
      { hysteresisFrames: 1, minSegmentMs: 0 },
    );
    expect(plain.map((s) => s.label)).toEqual(['a']);
  });
});
