// The motion stream: where and how much the picture changed since the stream's previous frame.
import { describe, expect, test } from 'vitest';
import { featureDim, MOTION_DIM, MOTION_GRID, MotionStream, repeatedFrame, withMotion } from '../../models/motion.ts';

const SIZE = 64;
const GRID = MOTION_GRID * MOTION_GRID;

/** A grey frame with a white square of side `side` at (x, y); `channels` 3 (rgb24) or 4 (rgba). */
function frame(x: number, y: number, side = 12, channels = 3, grey = 60) {
  const rgb = new Uint8Array(SIZE * SIZE * channels).fill(grey);
  for (let r = y; r < y + side; r++) for (let c = x; c < x + side; c++) rgb.fill(255, (r * SIZE + c) * channels, (r * SIZE + c) * channels + 3);
  return { rgb, width: SIZE, height: SIZE };
}

describe('MotionStream', () => {
  test('the first frame has no motion; a frame equal to the previous one has none either', () => {
    const m = new MotionStream();
    expect(Array.from(m.next(frame(10, 10)))).toEqual(new Array(MOTION_DIM).fill(0));
    expect(Array.from(m.next(frame(10, 10)))).toEqual(new Array(MOTION_DIM).fill(0));
  });

  test('changes within the noise floor are not motion', () => {
    const m = new MotionStream();
    m.next(frame(10, 10, 12, 3, 60));
    expect(Math.max(...m.next(frame(10, 10, 12, 3, 62)))).toBe(0);
  });

  test('a square moving in the top left puts the change there, and the centre of mass left of and above the middle', () => {
    const m = new MotionStream();
    m.next(frame(4, 4));
    const f = m.next(frame(10, 6));
    const cell = (gx: number, gy: number) => f[gy * MOTION_GRID + gx]!;
    expect(cell(0, 0) + cell(1, 0) + cell(0, 1) + cell(1, 1) + cell(2, 0) + cell(2, 1)).toBeGreaterThan(0.5);
    expect(cell(MOTION_GRID - 1, MOTION_GRID - 1)).toBe(0);
    expect(f[GRID]).toBeGreaterThan(0);
    expect(f[GRID + 1]).toBeLessThan(-0.3);
    expect(f[GRID + 2]).toBeLessThan(-0.3);
  });

  test('a faster movement changes more of the picture', () => {
    const energy = (step: number) => {
      const m = new MotionStream();
      m.next(frame(20, 26));
      return m.next(frame(20 + step, 26))[GRID]!;
    };
    expect(energy(2)).toBeGreaterThan(0);
    expect(energy(6)).toBeGreaterThan(energy(2) * 1.3);
  });

  test('rgba pixels (a canvas) give the same features as rgb24', () => {
    const a = new MotionStream();
    const b = new MotionStream();
    a.next(frame(4, 4));
    b.next(frame(4, 4, 12, 4));
    expect(Array.from(b.next(frame(30, 20, 12, 4)))).toEqual(Array.from(a.next(frame(30, 20))));
  });

  test('reset forgets the previous frame', () => {
    const m = new MotionStream();
    m.next(frame(4, 4));
    m.reset();
    expect(Math.max(...m.next(frame(40, 40)))).toBe(0);
  });
});

test('features are appended after the embedding; a repeated frame keeps its appearance and has no motion', () => {
  expect(featureDim(1280, 'appearance')).toBe(1280);
  expect(featureDim(1280, 'appearance+motion')).toBe(1280 + MOTION_DIM);
  const joined = withMotion(
    Float32Array.of(1, 2),
    Float32Array.from({ length: MOTION_DIM }, () => 0.5),
  );
  expect(joined.length).toBe(2 + MOTION_DIM);
  expect(Array.from(joined.subarray(0, 3))).toEqual([1, 2, 0.5]);
  const repeated = repeatedFrame(joined);
  expect(Array.from(repeated.subarray(0, 2))).toEqual([1, 2]);
  expect(Math.max(...repeated.subarray(2))).toBe(0);
  expect(joined[2]).toBe(0.5);
});
