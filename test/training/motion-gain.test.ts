import { expect, test } from 'vitest';
import { MOTION_DIM } from '../../models/motion.ts';
import { autoMotionGain } from '../../training/motion-gain.ts';

const A = 4;
/** One clip whose appearance values alternate ±a and motion values alternate ±m (variances a², m² per value). */
function clip(frames: number, a: number, m: number): { embeddings: Float32Array[] }[] {
  return [
    {
      embeddings: Array.from({ length: frames }, (_, t) => {
        const s = t % 2 === 0 ? 1 : -1;
        return Float32Array.from({ length: A + MOTION_DIM }, (_, i) => (i < A ? s * a : s * m));
      }),
    },
  ];
}

test("auto motion gain gives the motion stream `ratio` times the appearance part's total variance", () => {
  const videos = [clip(40, 3, 0.1), clip(40, 3, 0.1)];
  // Appearance: 4 values of variance 9; motion: 67 of variance 0.01.
  const balanced = Math.sqrt(36 / (MOTION_DIM * 0.01));
  expect(autoMotionGain(videos, A + MOTION_DIM, 'appearance+motion', 0, 1)).toBeCloseTo(balanced, 4);
  expect(autoMotionGain(videos, A + MOTION_DIM, 'appearance+motion', 0, 8)).toBeCloseTo(balanced * Math.sqrt(8), 4);
  // Bigger motion, smaller gain.
  expect(autoMotionGain([clip(40, 3, 0.3)], A + MOTION_DIM, 'appearance+motion', 0, 1)).toBeCloseTo(balanced / 3, 4);
  // Within [1, 100]: a stream that hardly moves is not blown up, a loud one is not damped.
  expect(autoMotionGain([clip(40, 3, 1e-4)], A + MOTION_DIM, 'appearance+motion', 0, 1)).toBe(100);
  expect(autoMotionGain([clip(40, 0.01, 1)], A + MOTION_DIM, 'appearance+motion', 0, 1)).toBe(1);
});

test('auto motion gain is measured after the running mean, and is 1 for a still stream or no stream', () => {
  // The head sees the appearance minus its running mean, which here varies less than the raw
  // values: the gain that balances it is smaller.
  const dim = A + MOTION_DIM;
  const half = autoMotionGain([clip(40, 1, 0.1)], dim, 'appearance+motion', 0.5, 1);
  expect(half).toBeGreaterThan(0);
  expect(half).toBeLessThan(autoMotionGain([clip(40, 1, 0.1)], dim, 'appearance+motion', 0, 1));
  expect(autoMotionGain([clip(40, 1, 0)], dim, 'appearance+motion', 0, 1)).toBe(1);
  expect(autoMotionGain([clip(40, 1, 0.1)], dim, 'appearance', 0, 1)).toBe(1);
});
