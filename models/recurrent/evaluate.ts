// Evaluation pass: sequences streamed through the head from a zero state with no dropout, exactly
// as offline labeling and live use run it; several sequences share one batched call per chunk.
import type { FrameInput, RecurrentHead } from './head.ts';

export interface EvalSequence {
  frames: FrameInput;
  /** Per-frame class indices (negative = not scored); optional. */
  labels?: ArrayLike<number>;
}

export interface EvalPassResult {
  /** probs[s][t]: class probabilities of frame t of sequence s. */
  probs: Float32Array[][];
  /** Mean per-frame cross-entropy over labeled frames (NaN when nothing is labeled). */
  loss: number;
  /** Frame accuracy over labeled frames (NaN when nothing is labeled). */
  accuracy: number;
  frames: number;
}

export interface EvalPassOptions {
  /** Frames per call (does not change results, only speed and memory). Default 64. */
  chunk?: number;
  /** Sequences per batched call. Default 8. */
  batch?: number;
}

export function evaluatePass(head: RecurrentHead, sequences: readonly EvalSequence[], options: EvalPassOptions = {}): EvalPassResult {
  const chunk = Math.max(1, options.chunk ?? 64);
  const batch = Math.max(1, options.batch ?? 8);
  const D = head.spec.inputDim;
  const probs: Float32Array[][] = sequences.map(() => []);
  const frameAt = (f: FrameInput, t: number) => (f instanceof Float32Array ? f.subarray(t * D, (t + 1) * D) : (f as readonly Float32Array[])[t]!);
  const lengthOf = (f: FrameInput) => (f instanceof Float32Array ? f.length / D : f.length);
  for (let s0 = 0; s0 < sequences.length; s0 += batch) {
    const group = sequences.slice(s0, s0 + batch);
    let states = group.map(() => head.zeroState());
    const lengths = group.map((s) => lengthOf(s.frames));
    const longest = Math.max(0, ...lengths);
    for (let t0 = 0; t0 < longest; t0 += chunk) {
      const active = group.map((_, g) => g).filter((g) => lengths[g]! > t0);
      const frames = active.map((g) => {
        const out: Float32Array[] = [];
        for (let t = t0; t < Math.min(lengths[g]!, t0 + chunk); t++) out.push(frameAt(group[g]!.frames, t));
        return out;
      });
      const r = head.stepBatch(
        active.map((g) => states[g]!),
        frames,
      );
      states = [...states];
      active.forEach((g, j) => {
        states[g] = r.states[j]!;
        probs[s0 + g]!.push(...r.probs[j]!);
      });
    }
  }
  let nll = 0;
  let correct = 0;
  let counted = 0;
  sequences.forEach((s, i) => {
    if (!s.labels) return;
    probs[i]!.forEach((p, t) => {
      const y = s.labels![t];
      if (y === undefined || y < 0) return;
      nll -= Math.log(Math.max(p[y]!, 1e-12));
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
      if (best === y) correct++;
      counted++;
    });
  });
  return { probs, loss: counted ? nll / counted : NaN, accuracy: counted ? correct / counted : NaN, frames: counted };
}
