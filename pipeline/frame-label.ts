// A frame's label from its probability vector: the argmax class and its probability, with no
// smoothing (the recurrent head is temporally smooth already), or `unknown` when the bundle's
// rule says the frame is none of its classes. Browser-safe: the on-device client labels its
// frames with this same function.
import { UNKNOWN_LABEL, type EmbeddedFrame, type FrameLabel } from '../core/types.ts';
import { isUnknown, type UnknownRule } from '../models/unknown-rule.ts';

/**
 * Builds the FrameLabel for a frame from its probability vector: the argmax label and its score,
 * or `unknown` when the rule says so (a number: the probability threshold alone; 0: never). The
 * embedding, when given, feeds the rule's distance check.
 */
export function toFrameLabel(
  frame: Omit<EmbeddedFrame, 'embedding'> & { embedding?: Float32Array },
  probs: Float32Array,
  classes: readonly string[],
  rule: UnknownRule | number = 0,
): FrameLabel {
  let best = 0;
  for (let c = 1; c < probs.length; c++) if (probs[c]! > probs[best]!) best = c;
  const score = probs[best]!;
  const r = typeof rule === 'number' ? { below: rule } : rule;
  const label = isUnknown(r, score, frame.embedding) ? UNKNOWN_LABEL : classes[best]!;
  return { streamId: frame.streamId, index: frame.index, timestampMs: frame.timestampMs, label, score, probs };
}
