// The confidence below which a frame is labeled `unknown` ("none of these"), chosen at train time
// and written in the bundle as `unknownBelow`. Conservative on purpose: an `unknown` on a frame
// whose truth is a class counts as an error, so the threshold is a low quantile of the top
// probability of the frames the head labels RIGHT (held-out frames when there are any): only about
// that share of good frames is lost, while frames of other activities, on which a head trained
// without them tends to hesitate, fall below it.
import { evaluatePass } from '../models/recurrent/evaluate.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import type { FrameInput } from '../models/recurrent/head.ts';

/** Share of correctly labeled held-out frames allowed below the threshold. */
export const UNKNOWN_QUANTILE_HELD_OUT = 0.02;
/** On training frames (no held-out data) the head is over-confident: a lower quantile keeps it conservative. */
export const UNKNOWN_QUANTILE_TRAINING = 0.005;
/** Fewer correctly labeled frames than this give no threshold (too few to estimate a low quantile). */
export const UNKNOWN_MIN_FRAMES = 50;

export interface UnknownCalibration {
  /** The threshold (0 = never unknown). */
  unknownBelow: number;
  /** For framewise.json: what it was computed on. */
  record: { on: 'validation' | 'training'; quantile: number; correctFrames: number; frames: number; note?: string };
}

/** The value at quantile q (0..1) of the values, linear between order statistics. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const pos = Math.min(Math.max(q, 0), 1) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * The threshold from the top probabilities of frames run as labeling runs them (whole videos from a
 * zero state): the `quantile` of the top probability over the frames whose argmax is their truth.
 * Frames with a negative truth are not scored.
 */
export function thresholdFromProbs(
  probs: readonly (readonly ArrayLike<number>[])[],
  truths: readonly ArrayLike<number>[],
  on: 'validation' | 'training',
  q = on === 'validation' ? UNKNOWN_QUANTILE_HELD_OUT : UNKNOWN_QUANTILE_TRAINING,
): UnknownCalibration {
  const top: number[] = [];
  let frames = 0;
  probs.forEach((video, v) => {
    video.forEach((p, t) => {
      const truth = truths[v]![t]!;
      if (truth < 0) return;
      frames++;
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
      if (best === truth) top.push(p[best]!);
    });
  });
  if (top.length < UNKNOWN_MIN_FRAMES) {
    return { unknownBelow: 0, record: { on, quantile: q, correctFrames: top.length, frames, note: `fewer than ${UNKNOWN_MIN_FRAMES} correctly labeled frames: never unknown` } };
  }
  // Rounded down to 3 decimals, so the written value never moves a calibration frame below it.
  const unknownBelow = Math.floor(quantile(top, q) * 1000) / 1000;
  return { unknownBelow, record: { on, quantile: q, correctFrames: top.length, frames } };
}

/** Runs the head over whole videos (held-out ones when `on` is 'validation') and calibrates. */
export function calibrateUnknown(
  head: RecurrentHead,
  videos: readonly { embeddings: FrameInput; labels: ArrayLike<number> }[],
  on: 'validation' | 'training',
): UnknownCalibration {
  const pass = evaluatePass(head, videos.map((v) => ({ frames: v.embeddings })));
  return thresholdFromProbs(pass.probs, videos.map((v) => v.labels), on);
}
