// The label stage: EmbeddedFrame -> FrameLabel through the recurrent head, one recurrent state
// per stream. Offline (file, stdin, queue) it is the `label` operator, with the states kept inside
// the subscription so two subscriptions never share state; live, the latest-wins scheduler calls
// `labelStreams` once per round for the streams it serves. Both build labels with `toFrameLabel`,
// the one place where a frame below the confidence threshold becomes `unknown`.
import { Observable, type OperatorFunction } from 'rxjs';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import type { RecurrentState } from '../models/recurrent/state.ts';
import type { EmbeddedFrame, FrameLabel } from '../core/types.ts';
import type { UnknownRule } from '../models/unknown-rule.ts';
import { toFrameLabel } from './frame-label.ts';

export { toFrameLabel } from './frame-label.ts';

export interface LabelOptions {
  /**
   * Frames of one stream stepped through the head together. Offline, 16-32 amortises the
   * per-call cost (results are identical: chunking never changes the head's output); live, 1
   * keeps latency at one frame.
   */
  chunk?: number;
  /**
   * A frame whose top probability is below this is labeled `unknown` (its score stays the top
   * probability, its probs are unchanged). 0 or absent: never unknown. Usually the bundle's
   * calibrated `unknownBelow`.
   */
  unknownBelow?: number;
  /** The whole rule (probability and distance to the training data), e.g. `unknownRuleOf(bundle meta)`; wins over `unknownBelow`. */
  unknown?: UnknownRule;
}

/**
 * One frame of each of several streams through the head in one batched step: each stream's state
 * goes in, its FrameLabel and next state come out (the same math as stepping them one by one).
 * A `gap` (ticks of the head's rate with no frame of their own, in a live stream) steps the given
 * embedding that many times first, as ffmpeg's fps filter repeats a frame offline.
 */
export function labelStreams(
  head: RecurrentHead,
  classes: readonly string[],
  items: readonly { state: RecurrentState; frame: EmbeddedFrame; gap?: { embedding: Float32Array; steps: number } }[],
  rule: UnknownRule | number = 0,
): { labels: FrameLabel[]; states: RecurrentState[] } {
  const sequences = items.map((it) => [...new Array<Float32Array>(it.gap?.steps ?? 0).fill(it.gap?.embedding ?? it.frame.embedding), it.frame.embedding]);
  const result = head.stepBatch(
    items.map((it) => it.state),
    sequences,
  );
  return { labels: items.map((it, b) => toFrameLabel(it.frame, result.probs[b]![sequences[b]!.length - 1]!, classes, rule)), states: result.states };
}

/** The offline label operator: frames of each stream stepped in chunks of `options.chunk`. */
export function label(head: RecurrentHead, classes: readonly string[], options: LabelOptions = {}): OperatorFunction<EmbeddedFrame, FrameLabel> {
  return (source) =>
    new Observable<FrameLabel>((subscriber) =>
      labelChunks(
        head,
        classes,
        options,
      )(source).subscribe({
        next: (labels) => {
          for (const l of labels) subscriber.next(l);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      }),
    );
}

/**
 * The label operator emitting each stepped chunk of one stream as one array (in order): the
 * writer downstream then handles a chunk per call instead of a frame per call, which is most of
 * its per-frame cost (a promise chain link, a write(2) per file, a progress callback).
 */
export function labelChunks(head: RecurrentHead, classes: readonly string[], options: LabelOptions = {}): OperatorFunction<EmbeddedFrame, FrameLabel[]> {
  const chunk = Math.max(1, Math.floor(options.chunk ?? 1));
  const rule = options.unknown ?? options.unknownBelow ?? 0;
  return (source) =>
    new Observable<FrameLabel[]>((subscriber) => {
      const states = new Map<string, RecurrentState>();
      const pending = new Map<string, EmbeddedFrame[]>();
      const flush = (streamId: string) => {
        const frames = pending.get(streamId);
        if (!frames || frames.length === 0) return;
        pending.set(streamId, []);
        const { probs, state } = head.step(
          states.get(streamId) ?? head.zeroState(),
          frames.map((f) => f.embedding),
        );
        states.set(streamId, state);
        subscriber.next(frames.map((f, i) => toFrameLabel(f, probs[i]!, classes, rule)));
      };
      const sub = source.subscribe({
        next: (frame) => {
          try {
            const list = pending.get(frame.streamId) ?? [];
            list.push(frame);
            pending.set(frame.streamId, list);
            if (list.length >= chunk) flush(frame.streamId);
          } catch (err) {
            subscriber.error(err);
          }
        },
        error: (err) => {
          // Frames already embedded are still labeled before the error goes downstream.
          try {
            for (const id of pending.keys()) flush(id);
          } finally {
            subscriber.error(err);
          }
        },
        complete: () => {
          try {
            for (const id of pending.keys()) flush(id);
            subscriber.complete();
          } catch (err) {
            subscriber.error(err);
          }
        },
      });
      return () => sub.unsubscribe();
    });
}
