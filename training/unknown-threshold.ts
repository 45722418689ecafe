// The confidence below which a frame is labeled `unknown` ("none of these"), chosen at train time
// and written in the bundle as `unknownBelow`. Conservative on purpose: an `unknown` on a frame
// whose truth is a class counts as an error, so the threshold is a low quantile of the top
// probability of the frames the head labels RIGHT (held-out frames when there are any): only about
// that share of good frames is lost, while frames of other activities, on which a head trained
// without them tends to hesitate, fall below it.
import { evaluatePass } from '../models/recurrent/evaluate.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { cosineDistance, type UnknownFarMeta } from '../models/unknown-rule.ts';

/**
 * Share of correctly labeled held-out frames allowed below the threshold. 1%, not more: a new person
 * makes the head less sure than the held-out clips of the training people did (ud810 at 160x120
 * grey, trained on one person: with 2% one seed put 18% of the other person's frames below it),
 * while clips of other activities are caught by the distance check almost alone (1 point of
 * them fell to the confidence check only).
 */
export const UNKNOWN_QUANTILE_HELD_OUT = 0.01;
/** On training frames (no held-out data) the head is over-confident: a lower quantile keeps it conservative. */
export const UNKNOWN_QUANTILE_TRAINING = 0.005;
/** Fewer correctly labeled frames than this give no threshold (too few to estimate a low quantile). */
export const UNKNOWN_MIN_FRAMES = 50;

/** Per class, the share of its frames within the distance limit, before the margin. */
export const FAR_QUANTILE = 0.99;
/** The limit is this many times the quantile, on held-out frames: room for new scenes, so own classes stay known. */
export const FAR_MARGIN_HELD_OUT = 1.5;
/**
 * On the training frames themselves (closer to their centroid than new video will be): measured on
 * ud810 (train on person 1, MobileNet v2 1.0 and v1 0.25 alike), the other person's frames in the
 * same room lie 1.5-3.5 times as far from the nearest class centroid as 99% of the training frames,
 * clips of other activities (HMDB51, UCF101, Kinetics) 3.4-10 times. A new person must stay known,
 * so the limit sits at the top of the first range.
 */
export const FAR_MARGIN_TRAINING = 3.5;
/**
 * No limit below this cosine distance: held-out clips that are near copies of the training ones
 * (generated data, one camera) would give a limit that new frames of the same class exceed. Distinct
 * scenes are 0.2-0.8 apart in MobileNet embeddings (measured on generated clips), noise 0.002-0.04.
 */
export const FAR_FLOOR = 0.1;

/**
 * What the frames calibrated on were: held out from the head ('validation'), held out from the
 * fold's head in cross-validation ('cross-validation': every training clip once, by a head that did
 * not train on it), or the head's own training frames ('training', over-confident: stricter quantiles).
 */
export type CalibratedOn = 'validation' | 'cross-validation' | 'training';

/** A video's per-frame embeddings and class ids (-1: not scored). */
type Clip = { embeddings: readonly Float32Array[]; labels: ArrayLike<number> };

export interface UnknownCalibration {
  /** The threshold (0 = never unknown). */
  unknownBelow: number;
  /** The distance check (absent when there are no training embeddings to take centroids from). */
  unknownFar?: UnknownFarMeta;
  /** For framewise.json: what it was computed on. */
  record: {
    on: CalibratedOn;
    quantile: number;
    correctFrames: number;
    frames: number;
    note?: string;
    /** What the distance limits were taken from: held-out frames, or the training frames with the wide margin. */
    farOn?: 'held-out' | 'training';
    farQuantile?: number;
    farMargin?: number;
    farFloor?: number;
  };
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
  on: CalibratedOn,
  q = on === 'training' ? UNKNOWN_QUANTILE_TRAINING : UNKNOWN_QUANTILE_HELD_OUT,
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
    return {
      unknownBelow: 0,
      record: { on, quantile: q, correctFrames: top.length, frames, note: `fewer than ${UNKNOWN_MIN_FRAMES} correctly labeled frames: never unknown` },
    };
  }
  // Rounded down to 3 decimals, so the written value never moves a calibration frame below it.
  const unknownBelow = Math.floor(quantile(top, q) * 1000) / 1000;
  return { unknownBelow, record: { on, quantile: q, correctFrames: top.length, frames } };
}

/**
 * Per class, the mean of its unit-length embeddings in `videos` (rounded: it is stored as JSON),
 * over their first `dim` values: the appearance embedding, without a motion stream after it (how
 * a frame looks is what makes it unlike the training data; models/unknown-rule.ts compares that part).
 */
export function classCentroids(
  videos: readonly Clip[],
  classes: number,
  dim = videos.find((v) => v.embeddings.length > 0)?.embeddings[0]!.length ?? 0,
): number[][] {
  const sums = Array.from({ length: classes }, () => new Float64Array(dim));
  const counts = new Array<number>(classes).fill(0);
  for (const v of videos) {
    v.embeddings.forEach((e, t) => {
      const c = v.labels[t]!;
      if (c < 0) return;
      let n = 0;
      for (let i = 0; i < dim; i++) n += e[i]! * e[i]!;
      n = Math.sqrt(n) || 1;
      for (let i = 0; i < dim; i++) sums[c]![i]! += e[i]! / n;
      counts[c]!++;
    });
  }
  return sums.map((s, c) => Array.from(s, (x) => Math.round((x / Math.max(1, counts[c]!)) * 1e5) / 1e5));
}

/** Per class, the cosine distances of the videos' frames (labeled with it) from its centroid. */
function distancesByClass(videos: readonly Clip[], centroids: readonly number[][]): number[][] {
  const own = centroids.map(() => [] as number[]);
  for (const v of videos) v.embeddings.forEach((e, t) => v.labels[t]! >= 0 && own[v.labels[t]!]!.push(cosineDistance(e, centroids[v.labels[t]!]!)));
  return own;
}

/** Each frame's cosine distance to the nearest of the centroids. */
function nearestDistances(videos: readonly { embeddings: readonly Float32Array[] }[], centroids: readonly number[][]): number[] {
  return videos.flatMap((v) => v.embeddings.map((e) => Math.min(...centroids.map((c) => cosineDistance(e, c)))));
}

/**
 * Per class, the cosine distance from its centroid within which its frames lie, times the margin
 * (at least FAR_FLOOR): `heldOut` frames (not trained on) get the narrow margin and a limit per
 * class, the training frames themselves the wide margin and one limit (their distances pooled).
 */
export function farLimits(
  videos: readonly Clip[],
  centroids: number[][],
  heldOut: boolean,
): { unknownFar: UnknownFarMeta; farOn: 'held-out' | 'training'; farQuantile: number; farMargin: number; farFloor: number } | undefined {
  const farMargin = heldOut ? FAR_MARGIN_HELD_OUT : FAR_MARGIN_TRAINING;
  // On the training frames one limit for all classes, from each frame's distance to the NEAREST
  // class mean (what the rule tests): a class whose clips vary more, or frames such as the still
  // start of a clip that sit nearer another class, would otherwise widen the limit until it takes
  // in other activities (measured on ud810, trained on person 2: 11% of them unknown instead of 94%).
  // On held-out frames one limit per class; a class without frames there gets the largest of the
  // others (never a tight one).
  const pooled = heldOut ? undefined : quantile(nearestDistances(videos, centroids), FAR_QUANTILE);
  const q =
    pooled !== undefined ? centroids.map(() => pooled) : distancesByClass(videos, centroids).map((d) => (d.length > 0 ? quantile(d, FAR_QUANTILE) : NaN));
  const widest = Math.max(0, ...q.filter((x) => !Number.isNaN(x)));
  if (widest === 0) return undefined;
  // Rounded up, so the written value never moves a calibration frame beyond it.
  const beyond = q.map((x) => Math.max(FAR_FLOOR, Math.ceil((Number.isNaN(x) ? widest : x) * farMargin * 1e4) / 1e4));
  return { unknownFar: { beyond, centroids }, farOn: heldOut ? 'held-out' : 'training', farQuantile: FAR_QUANTILE, farMargin, farFloor: FAR_FLOOR };
}

/**
 * Both checks: the probability threshold from frames run as labeling runs them (`probs`, `truths`,
 * of the kind `on` says), and the distance limits around the centroids of the training clips
 * `train` (their first `appearanceDim` values), from `heldOut` clips when there are, else from
 * `train` itself with the wide margin.
 */
export function calibrateUnknownFrom(
  frames: { probs: readonly (readonly ArrayLike<number>[])[]; truths: readonly ArrayLike<number>[]; on: CalibratedOn },
  clips: { train: readonly Clip[]; heldOut?: readonly Clip[]; classes: number; appearanceDim?: number },
): UnknownCalibration {
  const result = thresholdFromProbs(frames.probs, frames.truths, frames.on);
  if (clips.train.length === 0) return result;
  const centroids = classCentroids(clips.train, clips.classes, clips.appearanceDim);
  const heldOut = clips.heldOut?.some((v) => v.embeddings.length > 0) ? clips.heldOut : undefined;
  const far = farLimits(heldOut ?? clips.train, centroids, heldOut !== undefined);
  if (!far) return result;
  const { unknownFar, ...how } = far;
  return { ...result, unknownFar, record: { ...result.record, ...how } };
}

/**
 * Runs the head over whole videos (held-out ones when `on` is 'validation') and calibrates both
 * checks on them, the distances around the class centroids of `train` (the training videos).
 */
export function calibrateUnknown(
  head: RecurrentHead,
  videos: readonly Clip[],
  on: 'validation' | 'training',
  train: readonly Clip[] = [],
  appearanceDim?: number,
): UnknownCalibration {
  const pass = evaluatePass(
    head,
    videos.map((v) => ({ frames: v.embeddings })),
  );
  return calibrateUnknownFrom(
    { probs: pass.probs, truths: videos.map((v) => v.labels), on },
    { train, heldOut: on === 'validation' ? videos : undefined, classes: head.spec.classes, appearanceDim },
  );
}
