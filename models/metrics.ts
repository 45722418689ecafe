// Evaluation metrics for frame labeling, on plain class-index sequences (no tensors).
// Segmental metrics follow MS-TCN (Farha & Gall, CVPR 2019, eval.py): segments are maximal runs of
// one label, background classes are dropped from segments; Edit = (1 − Levenshtein(pred segment
// labels, true segment labels) / max(#pred, #true)); F1@τ greedily matches each predicted segment to
// the same-label true segment of highest IoU, a hit when IoU >= τ and that true segment is unused;
// tp/fp/fn are summed over all videos before precision, recall and F1.
// All scores are fractions in [0, 1] (MS-TCN prints them x100).
// A predicted label of UNKNOWN_PRED (-1) is the reserved `unknown` ("none of these"): on a frame
// whose truth is a class it is an error like any wrong class (accuracy, recall, Edit and F1@k all
// count it so), and the report also gives the share of `unknown` per true class.

/** The predicted "class index" of a frame labeled `unknown` (below the confidence threshold). */
export const UNKNOWN_PRED = -1;

import { isUnknown, type UnknownRule } from './unknown-rule.ts';

export interface LabelRun {
  label: number;
  /** First frame. */
  start: number;
  /** One past the last frame. */
  end: number;
}

/** Maximal runs of equal labels, skipping classes in `ignore` (e.g. background). */
export function labelRuns(labels: ArrayLike<number>, ignore: readonly number[] = []): LabelRun[] {
  const runs: LabelRun[] = [];
  for (let t = 0; t < labels.length;) {
    let e = t + 1;
    while (e < labels.length && labels[e] === labels[t]) e++;
    if (!ignore.includes(labels[t]!)) runs.push({ label: labels[t]!, start: t, end: e });
    t = e;
  }
  return runs;
}

function checkPair(pred: ArrayLike<number>, truth: ArrayLike<number>): void {
  if (pred.length !== truth.length) {
    throw new RangeError(`prediction has ${pred.length} frames, ground truth ${truth.length}`);
  }
}

/** Fraction of frames whose predicted label equals the truth (frames with truth < 0 are skipped). */
export function frameAccuracy(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  checkPair(pred, truth);
  let n = 0;
  let ok = 0;
  for (let t = 0; t < truth.length; t++) {
    if (truth[t]! < 0) continue;
    n++;
    if (pred[t] === truth[t]) ok++;
  }
  return n ? ok / n : NaN;
}

/** Segmental edit score of one video, MS-TCN definition. 1 when both have no segments. */
export function editScore(pred: ArrayLike<number>, truth: ArrayLike<number>, ignore: readonly number[] = []): number {
  const p = labelRuns(pred, ignore).map((r) => r.label);
  const y = labelRuns(truth, ignore).map((r) => r.label);
  const m = Math.max(p.length, y.length);
  if (m === 0) return 1;
  return 1 - levenshtein(p, y) / m;
}

export function levenshtein(a: readonly number[], b: readonly number[]): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

export interface SegmentCounts {
  tp: number;
  fp: number;
  fn: number;
}

/** MS-TCN f_score: true/false positives and false negatives at IoU threshold `overlap` (e.g. 0.1). */
export function segmentCounts(pred: ArrayLike<number>, truth: ArrayLike<number>, overlap: number, ignore: readonly number[] = []): SegmentCounts {
  checkPair(pred, truth);
  const p = labelRuns(pred, ignore);
  const y = labelRuns(truth, ignore);
  const hits = new Array<boolean>(y.length).fill(false);
  let tp = 0;
  let fp = 0;
  for (const s of p) {
    let best = -1;
    let bestIou = -Infinity;
    y.forEach((g, j) => {
      if (g.label !== s.label) return;
      const inter = Math.min(s.end, g.end) - Math.max(s.start, g.start);
      const union = Math.max(s.end, g.end) - Math.min(s.start, g.start);
      const iou = inter / union;
      if (iou > bestIou) {
        bestIou = iou;
        best = j;
      }
    });
    if (best >= 0 && bestIou >= overlap && !hits[best]) {
      tp++;
      hits[best] = true;
    } else {
      fp++;
    }
  }
  return { tp, fp, fn: y.length - hits.filter(Boolean).length };
}

export function f1FromCounts(c: SegmentCounts): number {
  const precision = c.tp + c.fp ? c.tp / (c.tp + c.fp) : 0;
  const recall = c.tp + c.fn ? c.tp / (c.tp + c.fn) : 0;
  return precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
}

/** Confusion matrix m[true][pred] (frames with truth < 0 are skipped). */
export function confusionMatrix(pred: ArrayLike<number>, truth: ArrayLike<number>, classes: number): number[][] {
  checkPair(pred, truth);
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let t = 0; t < truth.length; t++) {
    if (truth[t]! < 0) continue;
    m[truth[t]!]![pred[t]!]! += 1;
  }
  return m;
}

export interface ClassScore {
  precision: number;
  recall: number;
  f1: number;
  /** True frames of this class. */
  support: number;
}

/** Per-class precision/recall/F1 from a confusion matrix (0 where undefined, as sklearn's zero_division=0). */
export function perClassScores(confusion: number[][]): ClassScore[] {
  const C = confusion.length;
  return confusion.map((row, c) => {
    const tp = row[c]!;
    const support = row.reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let r = 0; r < C; r++) predicted += confusion[r]![c]!;
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { precision, recall, f1, support };
  });
}

/** Mean F1 over the classes that occur in the truth or the prediction. */
export function macroF1(confusion: number[][]): number {
  const scores = perClassScores(confusion);
  const present = scores.filter((s, c) => s.support > 0 || confusion.some((row) => row[c]! > 0));
  return present.length ? present.reduce((a, s) => a + s.f1, 0) / present.length : NaN;
}

/**
 * Average precision of one class from per-frame scores (non-interpolated, as sklearn's
 * average_precision_score): mean of precision@rank over the ranks of the positive frames.
 */
export function averagePrecision(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  const total = Array.from(positive).filter(Boolean).length;
  if (total === 0) return NaN;
  let tp = 0;
  let sum = 0;
  // Tied scores form one threshold: precision is taken after the whole tie group.
  for (let i = 0; i < idx.length;) {
    let j = i;
    let groupTp = 0;
    while (j < idx.length && scores[idx[j]!] === scores[idx[i]!]) {
      if (positive[idx[j]!]) groupTp++;
      j++;
    }
    tp += groupTp;
    sum += groupTp * (tp / j);
    i = j;
  }
  return sum / total;
}

/** Per-frame mAP: mean over classes with at least one true frame of the class's AP. */
export function frameMeanAP(probs: readonly ArrayLike<number>[], truth: ArrayLike<number>, classes: number): number {
  if (probs.length !== truth.length) throw new RangeError(`${probs.length} probability rows for ${truth.length} labels`);
  const aps: number[] = [];
  for (let c = 0; c < classes; c++) {
    const ap = averagePrecision(
      probs.map((p) => p[c]!),
      Array.from(truth, (y) => y === c),
    );
    if (!Number.isNaN(ap)) aps.push(ap);
  }
  return aps.length ? aps.reduce((a, b) => a + b, 0) / aps.length : NaN;
}

export interface ScoredSequence {
  /** Predicted class per frame. */
  pred: ArrayLike<number>;
  /** True class per frame (negative = unlabeled, skipped by frame metrics). */
  truth: ArrayLike<number>;
  /** Per-frame probabilities (for mAP); optional. */
  probs?: readonly ArrayLike<number>[];
}

export interface EvaluationReport {
  frames: number;
  sequences: number;
  accuracy: number;
  macroF1: number;
  /** Mean of per-video Edit scores (MS-TCN averages over videos). */
  edit: number;
  /** F1@{10,25,50} from tp/fp/fn summed over videos. */
  f1: { '10': number; '25': number; '50': number };
  /** Per-frame mAP over all frames of all sequences; NaN without probabilities. */
  mAP: number;
  perClass: (ClassScore & { label: string })[];
  /** confusion[true][pred] over the classes (frames predicted `unknown` are in `unknown`). */
  confusion: number[][];
  classes: string[];
  /** Frames predicted `unknown` (UNKNOWN_PRED): all of them, and per true class (share of its frames). */
  unknown: { frames: number; share: number; perClass: { label: string; frames: number; share: number }[] };
}

/** All the `framewise eval` numbers for a set of sequences. `background` labels are left out of segments. */
export function evaluateSequences(
  sequences: readonly ScoredSequence[],
  classes: readonly string[],
  options: { background?: readonly string[] } = {},
): EvaluationReport {
  const C = classes.length;
  const ignore = (options.background ?? ['background']).map((b) => classes.indexOf(b)).filter((i) => i >= 0);
  // One extra column, C, for frames predicted `unknown`: they count in each class's support (an
  // error), never as a prediction of a class.
  const wide = Array.from({ length: C }, () => new Array<number>(C + 1).fill(0));
  const counts = { '10': { tp: 0, fp: 0, fn: 0 }, '25': { tp: 0, fp: 0, fn: 0 }, '50': { tp: 0, fp: 0, fn: 0 } };
  let editSum = 0;
  const allProbs: ArrayLike<number>[] = [];
  const allTruth: number[] = [];
  let withProbs = true;
  for (const s of sequences) {
    const pred = Int32Array.from(s.pred as ArrayLike<number>, (p) => (p === UNKNOWN_PRED ? C : p));
    const m = confusionMatrix(pred, s.truth, C + 1);
    m.slice(0, C).forEach((row, i) => row.forEach((v, j) => (wide[i]![j]! += v)));
    editSum += editScore(s.pred, s.truth, ignore);
    for (const [key, tau] of [
      ['10', 0.1],
      ['25', 0.25],
      ['50', 0.5],
    ] as const) {
      const c = segmentCounts(s.pred, s.truth, tau, ignore);
      counts[key].tp += c.tp;
      counts[key].fp += c.fp;
      counts[key].fn += c.fn;
    }
    if (!s.probs) withProbs = false;
    else
      s.probs.forEach((p, t) => {
        if (s.truth[t]! >= 0) {
          allProbs.push(p);
          allTruth.push(s.truth[t]!);
        }
      });
  }
  const confusion = wide.map((row) => row.slice(0, C));
  const unknownPer = wide.map((row) => row[C]!);
  const unknownFrames = unknownPer.reduce((a, b) => a + b, 0);
  const frames = wide.flat().reduce((a, b) => a + b, 0);
  let correct = 0;
  for (let c = 0; c < C; c++) correct += confusion[c]![c]!;
  return {
    frames,
    sequences: sequences.length,
    accuracy: frames ? correct / frames : NaN,
    macroF1: macroF1(wide),
    edit: sequences.length ? editSum / sequences.length : NaN,
    f1: { '10': f1FromCounts(counts['10']), '25': f1FromCounts(counts['25']), '50': f1FromCounts(counts['50']) },
    mAP: withProbs && allProbs.length ? frameMeanAP(allProbs, allTruth, C) : NaN,
    perClass: perClassScores(wide).map((s, c) => ({ label: classes[c]!, ...s })),
    confusion,
    classes: [...classes],
    unknown: {
      frames: unknownFrames,
      share: frames ? unknownFrames / frames : NaN,
      perClass: unknownPer.map((n, c) => {
        const support = wide[c]!.reduce((a, b) => a + b, 0);
        return { label: classes[c]!, frames: n, share: support ? n / support : NaN };
      }),
    },
  };
}

/**
 * The label stage's decision per probability row: the argmax class, or UNKNOWN_PRED when the top
 * probability is below `unknownBelow` (0: never), exactly as `label` labels frames.
 */
export function predictLabels(probs: readonly ArrayLike<number>[], rule: UnknownRule | number = 0, embeddings?: readonly ArrayLike<number>[]): Int32Array {
  const r = typeof rule === 'number' ? { below: rule } : rule;
  return Int32Array.from(probs, (p, t) => {
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
    return isUnknown(r, p[best]!, embeddings?.[t]) ? UNKNOWN_PRED : best;
  });
}

/** Argmax per probability row: the predicted class of each frame. */
export function argmaxLabels(probs: readonly ArrayLike<number>[]): Int32Array {
  return Int32Array.from(probs, (p) => {
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
    return best;
  });
}
