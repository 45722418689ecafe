// Smoothing and segmentation: per-frame labels in, segments (runs of one label) out.
//
// Three steps, each optional, applied to copies of the probabilities (the per-frame outputs are
// always written raw and unsmoothed by the sinks; only segment boundaries are smoothed):
//  1. a centred moving average of the probabilities over `windowFrames` frames;
//  2. hysteresis: the running label changes only when another class beats it by `margin` for
//     `hysteresisFrames` consecutive frames; the new run then starts at the first of those frames,
//     so confirmation delays the output, never the boundary;
//  3. runs shorter than `minSegmentMs` are absorbed by a neighbour: the one whose label has the
//     higher mean raw probability over the short run's frames (the previous one at the end of the
//     stream, the next one at its start).
// Frames labeled `unknown` (below the confidence threshold, see label-stage.ts) count as one more
// class, so a stretch of them becomes an `unknown` segment through the same three steps: for the
// decision such a frame is all `unknown` (its class probabilities are set aside), for the score it
// carries its top probability, so an `unknown` segment's score is the mean top probability of its
// frames. Without unknown frames the extra class never wins and nothing changes.
// `Segmenter` does this incrementally (bounded memory: a window of frames plus one sum vector per
// open run); `segmentLabels` is the same machine run over an array, so both always agree.
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { UNKNOWN_LABEL, type FrameLabel, type Segment } from '../core/types.ts';

export interface SmoothingOptions {
  /** Frames in the centred moving average of probabilities; 1 = off. Odd, >= 1. Default 1: the
   * recurrent head is already temporally smooth, and each extra frame delays segment output. */
  windowFrames?: number;
  /** Consecutive frames a challenger must lead before the label switches; 1 = switch at once.
   * Default 3 (300 ms at the default 10 fps). */
  hysteresisFrames?: number;
  /** Probability margin (0..1) by which the challenger must beat the current label. Default 0.05. */
  margin?: number;
  /** Runs shorter than this many milliseconds are merged into a neighbour; 0 = off. Default 500. */
  minSegmentMs?: number;
  /** Duration in ms assumed for the last frame when the stream's end time is unknown and there is
   * only one frame to measure from. Default 1000 / DEFAULTS.fps. */
  frameDurationMs?: number;
}

export type ResolvedSmoothing = Readonly<Required<SmoothingOptions>>;

export const SMOOTHING_DEFAULTS: ResolvedSmoothing = Object.freeze({
  ...DEFAULTS.smoothing,
  frameDurationMs: 1000 / DEFAULTS.fps,
});

/** Fills defaults and range-checks; never mutates the caller's object. */
export function resolveSmoothing(options: SmoothingOptions = {}): ResolvedSmoothing {
  const o = { ...SMOOTHING_DEFAULTS };
  for (const k of Object.keys(SMOOTHING_DEFAULTS) as (keyof SmoothingOptions)[]) {
    const v = options[k];
    if (v !== undefined) o[k] = v;
  }
  const bad = (what: string) => new FramewiseError(ErrorCodes.USAGE, `smoothing: ${what}`);
  if (!Number.isInteger(o.windowFrames) || o.windowFrames < 1 || o.windowFrames % 2 === 0) {
    throw bad(`windowFrames must be an odd integer >= 1, got ${o.windowFrames}`);
  }
  if (!Number.isInteger(o.hysteresisFrames) || o.hysteresisFrames < 1) {
    throw bad(`hysteresisFrames must be an integer >= 1, got ${o.hysteresisFrames}`);
  }
  if (!(o.margin >= 0 && o.margin < 1)) throw bad(`margin must be in [0, 1), got ${o.margin}`);
  if (!(o.minSegmentMs >= 0 && Number.isFinite(o.minSegmentMs))) {
    throw bad(`minSegmentMs must be a finite number >= 0, got ${o.minSegmentMs}`);
  }
  if (!(o.frameDurationMs > 0 && Number.isFinite(o.frameDurationMs))) {
    throw bad(`frameDurationMs must be > 0, got ${o.frameDurationMs}`);
  }
  return Object.freeze(o);
}

/** A run of frames under construction: bounds plus the sum of RAW probabilities per class, so
 * that a segment's score can be computed for whichever label it finally gets. */
interface Run {
  cls: number;
  startFrame: number;
  startMs: number;
  /** Exclusive; set when the run is closed. */
  endFrame: number;
  endMs: number;
  sums: Float64Array;
  count: number;
}

/** A frame over the classes plus `unknown` (last): `decide` is what is smoothed, `raw` feeds the score. */
interface WideFrame {
  index: number;
  timestampMs: number;
  raw: Float32Array;
  decide: Float32Array;
}

/** A frame after the moving average: `smooth` decides the label, `raw` feeds the score. */
interface SmoothedFrame {
  index: number;
  timestampMs: number;
  raw: Float32Array;
  smooth: Float32Array;
}

function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
  return best;
}

export class Segmenter {
  readonly classes: readonly string[];
  readonly options: ResolvedSmoothing;
  /** The classes and `unknown` last: what runs are labeled with. */
  private readonly names: readonly string[];

  // Step 1: the last `windowFrames` frames; frame i is emitted once frame i + half has arrived.
  private window: WideFrame[] = [];
  private nextToSmooth = 0;
  // Step 2: the running run, and the challenger streak not yet confirmed.
  private current: Run | null = null;
  private streak: Run | null = null;
  // Step 3: the last run long enough to stand (still extendable until a run of another label
  // stands), and a short run waiting to be prepended to the next run.
  private kept: Run | null = null;
  private pending: Run | null = null;

  private lastIndex = -1;
  private lastMs = Number.NaN;
  private prevMs = Number.NaN;
  private frames = 0;
  private flushed = false;

  constructor(classes: readonly string[], options: SmoothingOptions = {}) {
    if (classes.length === 0) throw new FramewiseError(ErrorCodes.USAGE, 'Segmenter: no classes');
    this.classes = [...classes];
    this.names = [...classes, UNKNOWN_LABEL];
    this.options = resolveSmoothing(options);
  }

  /** Frames pushed so far. */
  get frameCount(): number {
    return this.frames;
  }

  /** Timestamp (ms) of the last pushed frame, NaN before the first. */
  get lastTimestampMs(): number {
    return this.lastMs;
  }

  /** Adds one frame (in index and time order); returns the segments that became final. */
  push(label: FrameLabel): Segment[] {
    if (this.flushed) throw new FramewiseError(ErrorCodes.USAGE, 'Segmenter: push after flush');
    if (label.probs.length !== this.classes.length) {
      throw new FramewiseError(
        ErrorCodes.MODEL_INVALID,
        `Segmenter: frame ${label.index} has ${label.probs.length} probabilities for ${this.classes.length} classes`,
      );
    }
    if (label.index <= this.lastIndex || !(label.timestampMs > this.lastMs || this.frames === 0)) {
      throw new FramewiseError(
        ErrorCodes.USAGE,
        `Segmenter: frames must increase in index and time; got index ${label.index} at ${label.timestampMs} ms after index ${this.lastIndex} at ${this.lastMs} ms`,
      );
    }
    this.lastIndex = label.index;
    this.prevMs = this.lastMs;
    this.lastMs = label.timestampMs;
    this.frames++;

    const out: Segment[] = [];
    const half = (this.options.windowFrames - 1) / 2;
    this.window.push(this.widen(label));
    if (this.window.length > this.options.windowFrames) this.window.shift();
    // Frame `nextToSmooth` has all its right-hand neighbours once `half` newer frames are in.
    while (this.frames - 1 - this.nextToSmooth >= half) this.smoothAndStep(out);
    return out;
  }

  /**
   * Ends the stream: `endMs` is where the last frame stops (exclusive), e.g. the video duration;
   * by default the last timestamp plus the last frame interval. Returns the remaining segments.
   */
  flush(endMs?: number): Segment[] {
    if (this.flushed) return [];
    this.flushed = true;
    const out: Segment[] = [];
    if (this.frames === 0) return out;
    const end = endMs ?? this.lastMs + (Number.isNaN(this.prevMs) ? this.options.frameDurationMs : this.lastMs - this.prevMs);
    if (!(end > this.lastMs)) {
      throw new FramewiseError(ErrorCodes.USAGE, `Segmenter: end ${end} ms is not after the last frame at ${this.lastMs} ms`);
    }
    while (this.nextToSmooth < this.frames) this.smoothAndStep(out);
    // An unconfirmed challenger never won: its frames stay with the current run.
    if (this.streak) this.absorb(this.current!, this.streak);
    this.streak = null;
    const last = this.current!;
    this.current = null;
    last.endFrame = this.lastIndex + 1;
    last.endMs = end;
    this.closeRun(last, null, out);
    if (this.kept) out.push(this.toSegment(this.kept));
    this.kept = null;
    return out;
  }

  private widen(label: FrameLabel): WideFrame {
    const C = this.classes.length;
    const raw = new Float32Array(C + 1);
    const decide = new Float32Array(C + 1);
    raw.set(label.probs);
    if (label.label === UNKNOWN_LABEL) {
      raw[C] = label.score;
      decide[C] = 1;
    } else {
      decide.set(label.probs);
    }
    return { index: label.index, timestampMs: label.timestampMs, raw, decide };
  }

  private smoothAndStep(out: Segment[]): void {
    // The window holds frames [frames - len, frames); the target's position inside it:
    const len = this.window.length;
    const pos = this.nextToSmooth - (this.frames - len);
    const half = (this.options.windowFrames - 1) / 2;
    const target = this.window[pos];
    let smooth = target.decide;
    if (half > 0) {
      smooth = new Float32Array(this.names.length);
      let n = 0;
      for (let j = Math.max(0, pos - half); j <= Math.min(len - 1, pos + half); j++, n++) {
        const p = this.window[j].decide;
        for (let c = 0; c < smooth.length; c++) smooth[c] += p[c];
      }
      for (let c = 0; c < smooth.length; c++) smooth[c] /= n;
    }
    this.nextToSmooth++;
    this.hysteresis({ index: target.index, timestampMs: target.timestampMs, raw: target.raw, smooth }, out);
  }

  private newRun(cls: number, f: SmoothedFrame): Run {
    return { cls, startFrame: f.index, startMs: f.timestampMs, endFrame: -1, endMs: Number.NaN, sums: new Float64Array(this.names.length), count: 0 };
  }

  private addFrame(run: Run, f: SmoothedFrame): void {
    for (let c = 0; c < run.sums.length; c++) run.sums[c] += f.raw[c];
    run.count++;
  }

  /** Appends `tail` (which directly follows `run`) to `run`. */
  private absorb(run: Run, tail: Run): void {
    for (let c = 0; c < run.sums.length; c++) run.sums[c] += tail.sums[c];
    run.count += tail.count;
  }

  private hysteresis(f: SmoothedFrame, out: Segment[]): void {
    if (!this.current) {
      this.current = this.newRun(argmax(f.smooth), f);
      this.addFrame(this.current, f);
      return;
    }
    const cur = this.current;
    const best = argmax(f.smooth);
    const challenges = best !== cur.cls && f.smooth[best] >= f.smooth[cur.cls] + this.options.margin;
    if (!challenges) {
      if (this.streak) this.absorb(cur, this.streak);
      this.streak = null;
      this.addFrame(cur, f);
      return;
    }
    if (this.streak && this.streak.cls !== best) {
      this.absorb(cur, this.streak);
      this.streak = null;
    }
    if (!this.streak) this.streak = this.newRun(best, f);
    this.addFrame(this.streak, f);
    if (this.streak.count >= this.options.hysteresisFrames) {
      // Confirmed: the current run ends where the streak began.
      cur.endFrame = this.streak.startFrame;
      cur.endMs = this.streak.startMs;
      this.current = this.streak;
      this.streak = null;
      this.closeRun(cur, this.current.cls, out);
    }
  }

  /** Step 3 for a closed run; `nextCls` is the label of the run that follows (null at the end). */
  private closeRun(run: Run, nextCls: number | null, out: Segment[]): void {
    if (this.pending) {
      // A short run at the very start, prepended to this one.
      const p = this.pending;
      this.pending = null;
      p.cls = run.cls;
      this.absorb(p, run);
      p.endFrame = run.endFrame;
      p.endMs = run.endMs;
      run = p;
    }
    const short = run.endMs - run.startMs < this.options.minSegmentMs;
    if (short) {
      const toNext = nextCls !== null && (this.kept === null || run.sums[nextCls] > run.sums[this.kept.cls]);
      if (toNext) {
        this.pending = run;
        return;
      }
      if (this.kept) {
        this.extend(this.kept, run);
        return;
      }
      // Neither neighbour exists (the whole stream is shorter than minSegmentMs): it stands,
      // under the label most probable over all of it.
      run.cls = argmax(run.sums);
    }
    if (this.kept && this.kept.cls === run.cls) {
      this.extend(this.kept, run);
      return;
    }
    if (this.kept) out.push(this.toSegment(this.kept));
    this.kept = run;
  }

  private extend(kept: Run, run: Run): void {
    this.absorb(kept, run);
    kept.endFrame = run.endFrame;
    kept.endMs = run.endMs;
  }

  private toSegment(run: Run): Segment {
    return {
      label: this.names[run.cls],
      startMs: run.startMs,
      endMs: run.endMs,
      startFrame: run.startFrame,
      endFrame: run.endFrame,
      score: run.count > 0 ? run.sums[run.cls] / run.count : 0,
    };
  }
}

/** Batch form of `Segmenter`: the same machine over a whole array (so the two always agree). */
export function segmentLabels(labels: readonly FrameLabel[], classes: readonly string[], options: SmoothingOptions & { endMs?: number } = {}): Segment[] {
  const { endMs, ...smoothing } = options;
  const seg = new Segmenter(classes, smoothing);
  const out: Segment[] = [];
  for (const l of labels) out.push(...seg.push(l));
  out.push(...seg.flush(endMs));
  return out;
}
