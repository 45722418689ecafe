// A frame's label from its probability vector: the argmax class and its probability, with no
// smoothing (the recurrent head is temporally smooth already). Browser-safe: the on-device client
// labels its frames with this same function.
import type { EmbeddedFrame, FrameLabel } from '../core/types.ts';

/** Builds the FrameLabel for a frame from its probability vector (argmax label and score). */
export function toFrameLabel(frame: Omit<EmbeddedFrame, 'embedding'>, probs: Float32Array, classes: readonly string[]): FrameLabel {
  let best = 0;
  for (let c = 1; c < probs.length; c++) if (probs[c]! > probs[best]!) best = c;
  return { streamId: frame.streamId, index: frame.index, timestampMs: frame.timestampMs, label: classes[best]!, score: probs[best]!, probs };
}

