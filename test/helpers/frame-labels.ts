// Hand-made FrameLabel sequences for segmentation, sink and overlay tests.
import type { FrameLabel } from '../../core/types.ts';
import { seededRandom } from '../../core/seeded-random.ts';

/** Frames at `fps` (timestamps index * 1000 / fps), each from explicit probabilities. */
export function labelsFromProbs(classes: readonly string[], probs: readonly number[][], fps = 10, streamId = 's'): FrameLabel[] {
  return probs.map((p, index) => {
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
    if (p.length !== classes.length) throw new Error(`frame ${index}: ${p.length} probs for ${classes.length} classes`);
    return { streamId, index, timestampMs: (index * 1000) / fps, label: classes[best], score: p[best], probs: Float32Array.from(p) };
  });
}

/** One frame per character of `seq` (a character is a class label): `hi` for the named class,
 * the rest of the mass spread evenly over the others. */
export function labelsFromString(classes: readonly string[], seq: string, hi = 0.8, fps = 10): FrameLabel[] {
  const lo = (1 - hi) / (classes.length - 1);
  return labelsFromProbs(
    classes,
    [...seq].map((ch) => {
      const k = classes.indexOf(ch);
      if (k < 0) throw new Error(`unknown class '${ch}'`);
      return classes.map((_, c) => (c === k ? hi : lo));
    }),
    fps,
  );
}

/** A noisy random walk over classes: long true runs with one-frame flickers, probabilities
 * normalised, so segmentation has real decisions to make. */
export function randomLabels(classes: readonly string[], n: number, seed: number, fps = 10): FrameLabel[] {
  const rnd = seededRandom(seed);
  let truth = 0;
  const probs: number[][] = [];
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.08) truth = Math.floor(rnd() * classes.length);
    const raw = classes.map((_, c) => (c === truth ? 1.0 : 0) + rnd() * 1.6);
    const sum = raw.reduce((a, b) => a + b, 0);
    probs.push(raw.map((x) => x / sum));
  }
  return labelsFromProbs(classes, probs, fps);
}
