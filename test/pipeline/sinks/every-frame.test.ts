import { expect, test } from 'vitest';
import { expandToSourceFrames, SourceFrameMapper } from '../../../pipeline/sinks/every-frame.ts';
import { labelsFromString } from '../../helpers/frame-labels.ts';

const AB = ['A', 'B'];

test('each source frame takes the latest processed frame at or before its time', () => {
  const labels = labelsFromString(AB, 'ABBA'); // 10 fps: 0, 100, 200, 300 ms
  const source = Array.from({ length: 12 }, (_, i) => (i * 1000) / 30); // 30 fps, 400 ms
  const out = expandToSourceFrames(labels, source);
  expect(out.map((l) => l.label).join('')).toBe('AAABBBBBBAAA');
  expect(out.map((l) => l.index)).toEqual(source.map((_, i) => i));
  expect(out.map((l) => l.timestampMs)).toEqual(source);
  // 100 ms = 3 * (1000 / 30) in floating point is not exact; it must still map to the label at 100.
  expect(out[3].probs).toBe(labels[1].probs);
});

test('source frames before the first label take the first one; streaming equals batch', () => {
  const labels = labelsFromString(AB, 'BAB').map((l) => ({ ...l, timestampMs: l.timestampMs + 50 }));
  const source = [0, 40, 50, 120, 160, 251, 400];
  const batch = expandToSourceFrames(labels, source);
  expect(batch.map((l) => l.label).join('')).toBe('BBBBABB');
  const m = new SourceFrameMapper(source);
  const streamed = [...labels.flatMap((l) => m.push(l)), ...m.flush()];
  expect(streamed).toEqual(batch);
  expect(expandToSourceFrames([], source)).toEqual([]);
});
