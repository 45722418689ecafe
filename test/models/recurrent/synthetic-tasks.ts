// Generated sequence tasks that no single frame can solve, for the memory tests.
import { SeededRandom } from '../../../core/seeded-random.ts';
import type { LabeledSequence } from '../../../models/recurrent/chunk-feeder.ts';

export interface TaskSequence extends LabeledSequence {
  frames: Float32Array[];
  labels: Int32Array;
  /** Frames since the current segment started (0 at its first frame). */
  age: Int32Array;
  /** Per frame, the observation a frame-only model can see (e.g. 0 = off, 1 = on). */
  observation: Int32Array;
}

function noisy(rng: SeededRandom, base: Float32Array, sigma: number): Float32Array {
  return base.map((v) => v + sigma * rng.normal());
}

/**
 * A light: class 0 'off' (always off), 1 'steady' (always on), 2 'blinking' (on `period` frames,
 * off `period` frames, starting at a random phase). An on frame could be steady or blinking, an off
 * frame off or blinking: only the recent history tells. Segments of random classes are stitched so
 * the head also learns transitions.
 */
export function lightSequences(
  count: number,
  o: { dim: number; seed: number; period?: number; segments?: [number, number]; segLen?: [number, number] },
): TaskSequence[] {
  const rng = new SeededRandom(o.seed);
  const period = o.period ?? 2;
  const [sMin, sMax] = o.segments ?? [3, 5];
  const [lMin, lMax] = o.segLen ?? [14, 24];
  const protoRng = new SeededRandom(1234);
  const on = Float32Array.from({ length: o.dim }, () => protoRng.normal());
  const off = Float32Array.from({ length: o.dim }, () => protoRng.normal());
  return Array.from({ length: count }, () => {
    const frames: Float32Array[] = [];
    const labels: number[] = [];
    const age: number[] = [];
    const obs: number[] = [];
    let prev = -1;
    const nSeg = sMin + rng.int(sMax - sMin + 1);
    for (let s = 0; s < nSeg; s++) {
      let cls = rng.int(3);
      while (cls === prev) cls = rng.int(3);
      prev = cls;
      const len = lMin + rng.int(lMax - lMin + 1);
      const phase = rng.int(2 * period);
      for (let t = 0; t < len; t++) {
        const lit = cls === 1 || (cls === 2 && Math.floor((t + phase) / period) % 2 === 0);
        frames.push(noisy(rng, lit ? on : off, 0.3));
        labels.push(cls);
        age.push(t);
        obs.push(lit ? 1 : 0);
      }
    }
    return { frames, labels: Int32Array.from(labels), age: Int32Array.from(age), observation: Int32Array.from(obs) };
  });
}

/**
 * A cue frame (cue A or cue B) opens each segment, then only neutral filler frames follow; every
 * frame of the segment is labeled with its cue. Frames far from the cue can only be labeled by
 * remembering it.
 */
export function cueSequences(count: number, o: { dim: number; seed: number; segments?: number; segLen?: [number, number] }): TaskSequence[] {
  const rng = new SeededRandom(o.seed);
  const protoRng = new SeededRandom(4321);
  const cues = [0, 1].map(() => Float32Array.from({ length: o.dim }, () => 2 * protoRng.normal()));
  const filler = new Float32Array(o.dim);
  const [lMin, lMax] = o.segLen ?? [10, 16];
  return Array.from({ length: count }, () => {
    const frames: Float32Array[] = [];
    const labels: number[] = [];
    const age: number[] = [];
    for (let s = 0; s < (o.segments ?? 4); s++) {
      const cls = rng.int(2);
      const len = lMin + rng.int(lMax - lMin + 1);
      for (let t = 0; t < len; t++) {
        frames.push(noisy(rng, t === 0 ? cues[cls]! : filler, 0.3));
        labels.push(cls);
        age.push(t);
      }
    }
    return { frames, labels: Int32Array.from(labels), age: Int32Array.from(age), observation: Int32Array.from(age, (a) => (a === 0 ? 1 : 0)) };
  });
}
