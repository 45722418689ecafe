// Per-video rows for the reports: how much of each video (or clip) the head labels right, and the
// label most of its frames get. Plain class-index arrays in, plain rows out.
import { UNKNOWN_LABEL } from '../core/types.ts';
import { UNKNOWN_PRED } from '../models/metrics.ts';
import type { PerVideoRow } from './report.ts';

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
    return {
      name: v.name,
      frames: v.truth.length,
      accuracy: v.truth.length ? right / v.truth.length : NaN,
      ...(o.singleLabel && v.truth.length ? { truth: classes[v.truth[0]!] } : {}),
      majority: v.truth.length ? names[votes.indexOf(Math.max(...votes))]! : '–',
      ...(o.group ? { group: o.group } : {}),
    };
  });
}

/** Fraction of single-label clips whose majority label is their own. */
export function clipAccuracyOf(rows: readonly PerVideoRow[]): number {
  return rows.length ? rows.filter((r) => r.truth === r.majority).length / rows.length : NaN;
}
