// Scores a head on an embedded dataset the way `framewise eval` reports it: every video streamed
// from a zero state (views averaged when there are several), and for folder-per-class data also
// clip accuracy by majority of frames and stitched sequences (transitions and carried state).
import { argmaxLabels, editScore, evaluateSequences, type EvaluationReport } from '../models/metrics.ts';
import type { UnknownRule } from '../models/unknown-rule.ts';
import { toFrameLabel } from '../pipeline/frame-label.ts';
import { segmentLabels } from '../pipeline/segment.ts';
import { evaluatePass } from '../models/recurrent/evaluate.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { DEFAULTS } from '../core/defaults.ts';
import { SeededRandom } from '../core/seeded-random.ts';
import type { EmbeddedVideo } from './embed-dataset.ts';
import { stitchClips } from './sequences.ts';

export interface ScoredVideo {
  name: string;
  probs: Float32Array[];
  truth: Int32Array;
  pred: Int32Array;
}

export interface DatasetScore {
  /** Per video, each from a zero state. */
  videos: ScoredVideo[];
  report: EvaluationReport;
  /** Folder-per-class data: share of clips whose majority of frames is right. */
  clipAccuracy?: number;
  /** Folder-per-class data: clips stitched 4 to a sequence with a fixed seed. */
  stitched?: EvaluationReport;
  /** Those sequences' per-frame probabilities and truths. */
  stitchedSequences?: { probs: Float32Array[]; truth: Int32Array }[];
}

/** Per-frame probabilities of one video, averaged over its views. */
function probsOf(head: RecurrentHead, perView: readonly EmbeddedVideo[], classes: number): Float32Array[] {
  const passes = evaluatePass(
    head,
    perView.map((v) => ({ frames: v.embeddings })),
  ).probs;
  return averageProbs(passes, classes);
}

/** Frame by frame, the mean of several passes' probabilities (views of a video, or several heads). */
export function averageProbs(passes: readonly (readonly Float32Array[])[], classes: number): Float32Array[] {
  const n = Math.min(...passes.map((p) => p.length));
  return Array.from({ length: n }, (_, t) => {
    const avg = new Float32Array(classes);
    for (const p of passes) p[t]!.forEach((x, c) => (avg[c]! += x / passes.length));
    return avg;
  });
}

export function scoreDataset(head: RecurrentHead, classes: readonly string[], embedded: readonly EmbeddedVideo[][], folders: boolean): DatasetScore {
  const videos = embedded.map((perView) => {
    const probs = probsOf(head, perView, classes.length);
    return { name: perView[0]!.name, probs, truth: perView[0]!.labels.subarray(0, probs.length), pred: argmaxLabels(probs) };
  });
  const report = evaluateSequences(videos, classes);
  if (!folders) return { videos, report };
  const clipAccuracy = videos.filter((s) => majority(s.pred, classes.length) === s.truth[0]).length / videos.length;
  const rng = new SeededRandom(DEFAULTS.seed);
  const seqs = stitchClips(
    embedded.map((v) => v[0]!),
    { sequences: Math.max(4, embedded.length), clipsPerSequence: 4, rand: () => rng.next() },
  );
  const pass = evaluatePass(
    head,
    seqs.map((s) => ({ frames: s.embeddings })),
  );
  const stitchedSequences = pass.probs.map((probs, i) => ({ probs, truth: seqs[i]!.labels }));
  const stitched = evaluateSequences(
    stitchedSequences.map((s) => ({ ...s, pred: argmaxLabels(s.probs) })),
    classes,
  );
  return { videos, report, clipAccuracy, stitched, stitchedSequences };
}

/** The class most frames of a clip got (ties: the lower class id). */
export function majority(pred: ArrayLike<number>, classes: number): number {
  const votes = new Array<number>(classes).fill(0);
  for (let i = 0; i < pred.length; i++) votes[pred[i]!]!++;
  return votes.indexOf(Math.max(...votes));
}

/**
 * Edit score of the segments `label` writes for one sequence (its default smoothing, the unknown
 * rule if given): each frame takes its segment's class (`unknown` is an error), then the usual
 * Edit against the truth. The per-frame Edit scores raw labels, which flicker where label's
 * hysteresis and shortest segment would not.
 */
export function segmentEdit(
  probs: readonly Float32Array[],
  truth: ArrayLike<number>,
  classes: readonly string[],
  fps: number,
  unknown?: { rule: UnknownRule; embeddings: readonly Float32Array[] },
): number {
  const frames = probs.map((p, t) =>
    toFrameLabel({ streamId: 'scored', index: t, timestampMs: (t * 1000) / fps, embedding: unknown?.embeddings[t] }, p, classes, unknown?.rule),
  );
  const pred = new Int32Array(probs.length).fill(classes.length);
  for (const seg of segmentLabels(frames, classes, { frameDurationMs: 1000 / fps })) {
    const c = classes.indexOf(seg.label);
    pred.fill(c < 0 ? classes.length : c, seg.startFrame, seg.endFrame);
  }
  return editScore(pred, truth);
}
