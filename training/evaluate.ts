// Scoring a head on labeled sequences the way labeling runs it: from a zero state, no dropout.
import { evaluateSequences, argmaxLabels, type EvaluationReport } from '../models/metrics.ts';
import { evaluatePass } from '../models/recurrent/evaluate.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import type { LabeledSequence } from './sequences.ts';

export interface EvalResult {
  loss: number;
  accuracy: number;
  report: EvaluationReport;
  /** Folder-per-class data: majority-of-frames accuracy on whole clips. */
  clipAccuracy?: number;
}

/** Streams sequences from a zero state (no dropout), as labeling does, and scores them. */
export function evaluate(
  head: RecurrentHead,
  sequences: readonly LabeledSequence[],
  classes: readonly string[],
  clips?: readonly LabeledSequence[],
): EvalResult {
  const pass = evaluatePass(
    head,
    sequences.map((s) => ({ frames: s.embeddings, labels: s.labels })),
  );
  const report = evaluateSequences(
    pass.probs.map((p, i) => ({ pred: argmaxLabels(p), truth: sequences[i]!.labels, probs: p })),
    classes,
  );
  let clipAccuracy: number | undefined;
  if (clips && clips.length > 0) {
    const clipPass = evaluatePass(
      head,
      clips.map((s) => ({ frames: s.embeddings })),
    );
    let right = 0;
    clipPass.probs.forEach((p, i) => {
      const votes = new Array<number>(classes.length).fill(0);
      for (const l of argmaxLabels(p)) votes[l]!++;
      if (votes.indexOf(Math.max(...votes)) === clips[i]!.labels[0]) right++;
    });
    clipAccuracy = right / clips.length;
  }
  return { loss: pass.loss, accuracy: pass.accuracy, report, clipAccuracy };
}
