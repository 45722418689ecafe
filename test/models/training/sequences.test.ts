import { expect, test } from 'vitest';
import { mulberry32 } from '../../../pipeline/seeded-random.ts';
import { stitchClips, tbpttChunks, temporalJitter, type LabeledSequence } from '../../../models/training/sequences.ts';

// Embedding of frame t of sequence s is [s, t]: every value tells where it came from.
function seq(s: number, length: number, label = s): LabeledSequence {
  return {
    name: `s${s}`,
    embeddings: Array.from({ length }, (_, t) => Float32Array.of(s, t)),
    labels: new Int32Array(length).fill(label),
  };
}

test('chunks carry each sequence through one slot in order, reset at its start, mask its tail', () => {
  const seqs = [seq(0, 5), seq(1, 3), seq(2, 2)];
  const chunks = [...tbpttChunks(seqs, 2, 2)];
  const seen = new Map<number, number[]>();
  for (const c of chunks) {
    for (let b = 0; b < c.batch; b++) {
      for (let t = 0; t < c.chunk; t++) {
        const row = b * c.chunk + t;
        if (!c.mask[row]) continue;
        const [s, ti] = [c.x[row * 2]!, c.x[row * 2 + 1]!];
        if (ti === 0) expect(t === 0 && c.reset[b]).toBe(true); // a sequence starts on a reset boundary
        seen.set(s, [...(seen.get(s) ?? []), ti]);
        expect(c.labels[row]).toBe(s);
      }
    }
  }
  expect(seen.get(0)).toEqual([0, 1, 2, 3, 4]);
  expect(seen.get(1)).toEqual([0, 1, 2]);
  expect(seen.get(2)).toEqual([0, 1]);
  const realFrames = chunks.reduce((n, c) => n + c.mask.reduce((a, m) => a + m, 0), 0);
  expect(realFrames).toBe(10);
  // Continuation chunks of a sequence are not reset (the state is carried).
  expect(chunks[1]!.reset[0]).toBe(false);
});

test('stitched sequences change class at every clip boundary', () => {
  const clips = [seq(0, 4), seq(1, 4), seq(2, 4)];
  const out = stitchClips(clips, { sequences: 5, clipsPerSequence: 6, rand: mulberry32(3) });
  expect(out).toHaveLength(5);
  for (const s of out) {
    expect(s.labels.length).toBe(24);
    for (let i = 4; i < 24; i += 4) expect(s.labels[i]).not.toBe(s.labels[i - 1]);
  }
});

test('temporal jitter keeps frames and labels aligned and changes the length with speed', () => {
  const base = { name: 'x', embeddings: Array.from({ length: 100 }, (_, t) => Float32Array.of(t)), labels: Int32Array.from({ length: 100 }, (_, t) => t) };
  const slow = temporalJitter(base, { rand: mulberry32(1), speed: [0.5, 0.5], dropProb: 0 });
  expect(slow.labels.length).toBe(200);
  const fast = temporalJitter(base, { rand: mulberry32(1), speed: [2, 2], dropProb: 0.2 });
  expect(fast.labels.length).toBeLessThan(50);
  fast.labels.forEach((l, i) => expect(fast.embeddings[i]![0]).toBe(l));
  expect([...fast.labels]).toEqual([...fast.labels].sort((a, b) => a - b));
});
