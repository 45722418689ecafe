import { expect, test } from 'vitest';
import { seededRandom } from '../../core/seeded-random.ts';
import { stitchClips, temporalJitter, type LabeledSequence } from '../../training/sequences.ts';

// Embedding of frame t of sequence s is [s, t]: every value tells where it came from.
function seq(s: number, length: number, label = s): LabeledSequence {
  return {
    name: `s${s}`,
    embeddings: Array.from({ length }, (_, t) => Float32Array.of(s, t)),
    labels: new Int32Array(length).fill(label),
  };
}

test('stitched sequences change class at every clip boundary', () => {
  const clips = [seq(0, 4), seq(1, 4), seq(2, 4)];
  const out = stitchClips(clips, { sequences: 5, clipsPerSequence: 6, rand: seededRandom(3) });
  expect(out).toHaveLength(5);
  for (const s of out) {
    expect(s.labels.length).toBe(24);
    for (let i = 4; i < 24; i += 4) expect(s.labels[i]).not.toBe(s.labels[i - 1]);
  }
});

test('temporal jitter keeps frames and labels aligned and changes the length with speed', () => {
  const base = { name: 'x', embeddings: Array.from({ length: 100 }, (_, t) => Float32Array.of(t)), labels: Int32Array.from({ length: 100 }, (_, t) => t) };
  const slow = temporalJitter(base, { rand: seededRandom(1), speed: [0.5, 0.5], dropProb: 0 });
  expect(slow.labels.length).toBe(200);
  const fast = temporalJitter(base, { rand: seededRandom(1), speed: [2, 2], dropProb: 0.2 });
  expect(fast.labels.length).toBeLessThan(50);
  fast.labels.forEach((l, i) => expect(fast.embeddings[i]![0]).toBe(l));
  expect([...fast.labels]).toEqual([...fast.labels].sort((a, b) => a - b));
});

test('class-balanced stitching draws a rare class as often as a common one', () => {
  // Class 0 has 9 clips, class 1 one clip, class 2 one clip.
  const clips = [...Array.from({ length: 9 }, (_, i) => seq(i, 2, 0)), seq(9, 2, 1), seq(10, 2, 2)];
  const share = (balanceClasses: boolean) => {
    const out = stitchClips(clips, { sequences: 300, clipsPerSequence: 1, rand: seededRandom(5), balanceClasses });
    return out.filter((s) => s.labels[0] === 0).length / out.length;
  };
  expect(share(false)).toBeGreaterThan(0.7);
  expect(Math.abs(share(true) - 1 / 3)).toBeLessThan(0.08);
});
