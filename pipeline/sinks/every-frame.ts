// `--every-frame`: labels computed at the bundle's fps (e.g. 10) mapped back onto every source
// frame (e.g. 30 fps). Each source frame takes the latest processed frame at or before its time,
// the same rule the overlay uses, so the head stays causal: no source frame shows a label computed
// from a later image. Source frames before the first processed one take the first (there is
// nothing earlier).
import type { FrameLabel } from '../../core/types.ts';

/** Timestamps of two sources agree within this many ms (float rounding of 1000/fps). */
const EPS_MS = 1e-3;

/**
 * Streaming form: construct with the source frame times (ms, ascending), push processed labels in
 * order, get the source frames that became decidable; flush() returns the rest.
 */
export class SourceFrameMapper {
  private next = 0;
  private prev: FrameLabel | null = null;

  constructor(private readonly sourceTimesMs: readonly number[]) {}

  push(label: FrameLabel): FrameLabel[] {
    const out: FrameLabel[] = [];
    // Source frames strictly before this label belong to the previous one (or to this one if first).
    while (this.next < this.sourceTimesMs.length && this.sourceTimesMs[this.next] < label.timestampMs - EPS_MS) {
      out.push(this.emit(this.prev ?? label));
    }
    this.prev = label;
    return out;
  }

  flush(): FrameLabel[] {
    const out: FrameLabel[] = [];
    if (!this.prev) return out;
    while (this.next < this.sourceTimesMs.length) out.push(this.emit(this.prev));
    return out;
  }

  private emit(from: FrameLabel): FrameLabel {
    const i = this.next++;
    return { streamId: from.streamId, index: i, timestampMs: this.sourceTimesMs[i], label: from.label, score: from.score, probs: from.probs };
  }
}

/** One label per source frame: index = source frame number, timestamp = source time. */
export function expandToSourceFrames(labels: readonly FrameLabel[], sourceFrameTimesMs: readonly number[]): FrameLabel[] {
  const m = new SourceFrameMapper(sourceFrameTimesMs);
  const out: FrameLabel[] = [];
  for (const l of labels) out.push(...m.push(l));
  out.push(...m.flush());
  return out;
}
