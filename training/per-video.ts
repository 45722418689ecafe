// Per-video rows for the reports: how much of each video (or clip) the head labels right, and the
// label most of its frames get. Plain class-index arrays in, plain rows out.
import { UNKNOWN_LABEL } from '../core/types.ts';
import { UNKNOWN_PRED } from '../models/metrics.ts';
import type { PerVideoRow } from './report.ts';

/**
 * The middle half of a clip of `n` frames, [start, end): what the clip-level benchmarks score, away
 * from its first frames (where a causal labeler cannot know the action yet) and its last ones (where
 * many clips fade back to standing still).
 */
export function middleHalf(n: number): [start: number, end: number] {
  return [Math.floor(n / 4), Math.ceil((3 * n) / 4)];
}

export interface ScoredVideo {
  name: string;
  pred: ArrayLike<number>;
  truth: ArrayLike<number>;
}

/** `singleLabel`: each video has one true label (folder-per-class clips), shown as its truth. */
export function perVideoRows(videos: readonly ScoredVideo[], classes: readonly string[], o: { singleLabel?: boolean; group?: string } = {}): PerVideoRow[] {
  return videos.map((v) => {
    let right = 0;
    // The last vote is `unknown`: a clip mostly below the threshold has `unknown` as its majority.
    const names = [...classes, UNKNOWN_LABEL];
    const votes = new Array<number>(names.length).fill(0);
    for (let t = 0; t < v.truth.length; t++) {
      if (v.pred[t] === v.truth[t]) right++;
      votes[v.pred[t] === UNKNOWN_PRED ? classes.length : v.pred[t]!]!++;
    }
    let middleRight = 0;
    const [from, to] = middleHalf(v.truth.length);
    for (let t = from; t < to; t++) if (v.pred[t] === v.truth[t]) middleRight++;
    return {
      name: v.name,
      frames: v.truth.length,
      accuracy: v.truth.length ? right / v.truth.length : NaN,
      ...(o.singleLabel && v.truth.length ? { truth: classes[v.truth[0]!], middleAccuracy: middleRight / (to - from) } : {}),
      majority: v.truth.length ? names[votes.indexOf(Math.max(...votes))]! : '–',
      ...(o.group ? { group: o.group } : {}),
    };
  });
}

/** Fraction of single-label clips whose majority label is their own. */
export function clipAccuracyOf(rows: readonly PerVideoRow[]): number {
  return rows.length ? rows.filter((r) => r.truth === r.majority).length / rows.length : NaN;
}

/** Single-label clips: the mean over clips of the share of right frames in each clip's middle half, and the lowest. */
export function middleAccuracyOf(rows: readonly PerVideoRow[]): { mean: number; lowest: number } {
  const xs = rows.map((r) => r.middleAccuracy).filter((x): x is number => x !== undefined);
  return xs.length ? { mean: xs.reduce((a, b) => a + b, 0) / xs.length, lowest: Math.min(...xs) } : { mean: NaN, lowest: NaN };
}
