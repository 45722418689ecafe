// The embed stage: Frame -> EmbeddedFrame through an Embedder, lossless and in order.
// Frames that arrive while the model is busy wait and go together in a later call (up to
// batchSize). It never waits for a batch to fill when the model is idle, so a slow source gets
// batch 1 and no added latency, while a fast (offline) source gets full batches.
//
// Up to `concurrency` calls run at once (default 2). An embedder on another thread (a worker
// pool, ONNX Runtime in a worker) otherwise idles from the moment it answers until this thread
// has labeled and written that batch and sent the next one; with a second full batch already
// queued it never waits for this thread. Extra calls carry full batches only (or the last
// frames of the stream), so batching, and with it the model's efficiency, is what one call
// at a time would get.
import { Observable, type OperatorFunction } from 'rxjs';
import type { Embedder } from '../models/embedder.ts';
import { MotionStream, withMotion, type FeatureSet } from '../models/motion.ts';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError, integerIn } from '../core/errors.ts';
import type { EmbeddedFrame, Frame } from '../core/types.ts';

export interface EmbedOptions {
  /** Most frames per embedder call, an integer in [1, 1024]. Default DEFAULTS.embedBatch. */
  batchSize?: number;
  /** Most embedder calls in flight, an integer in [1, 64]. Default DEFAULTS.embedConcurrency. */
  concurrency?: number;
  /** The per-frame features to emit: the embedding alone (default) or with the motion stream
   * appended (models/motion.ts; computed here, in arrival order, per streamId). */
  features?: FeatureSet;
}

/**
 * Embeds every frame exactly once and emits in arrival order. Frames waiting for the model are held
 * here and RxJS has no demand channel, so for bounded memory run it under a credit loop
 * (`decodeThrough(input, options, embed(embedder), embedCredit())` in pipeline/decode.ts).
 * An error from the source is delivered after the frames already received have been embedded;
 * an embedder error ends the stream at once. Unsubscribing drops waiting frames.
 */
export function embed(embedder: Embedder, options: EmbedOptions = {}): OperatorFunction<Frame, EmbeddedFrame> {
  const batchSize = integerIn('embed batchSize', options.batchSize ?? DEFAULTS.embedBatch, 1, 1024);
  const concurrency = integerIn('embed concurrency', options.concurrency ?? DEFAULTS.embedConcurrency, 1, 64);
  const addMotion = options.features === 'appearance+motion';
  return (source) =>
    new Observable<EmbeddedFrame>((subscriber) => {
      const waiting: Frame[] = [];
      /** Calls in flight, oldest first; results are emitted in this order whatever order they finish in. */
      const calls: { batch: Frame[]; motion?: Float32Array[]; result?: Float32Array[] }[] = [];
      const streams = new Map<string, MotionStream>();
      // Before the embedder sees the frames: a worker pool takes their pixels.
      const motionOf = (batch: Frame[]): Float32Array[] =>
        batch.map((f) => {
          let stream = streams.get(f.streamId);
          if (!stream) streams.set(f.streamId, (stream = new MotionStream()));
          return stream.next(f);
        });
      let ended: { error?: unknown } | undefined;

      const emitDone = (): void => {
        while (calls.length > 0 && calls[0]!.result && !subscriber.closed) {
          const { batch, motion, result } = calls.shift()!;
          batch.forEach((f, i) =>
            subscriber.next({
              streamId: f.streamId,
              index: f.index,
              timestampMs: f.timestampMs,
              embedding: motion ? withMotion(result![i]!, motion[i]!) : result![i]!,
            }),
          );
        }
      };

      const pump = (): void => {
        if (subscriber.closed) return;
        // The first call takes whatever waits (latency); further ones only full batches (efficiency).
        while (waiting.length > 0 && calls.length < concurrency && (calls.length === 0 || waiting.length >= batchSize || ended)) {
          const batch = waiting.splice(0, batchSize);
          const call: (typeof calls)[number] = { batch, motion: addMotion ? motionOf(batch) : undefined };
          calls.push(call);
          embedder.embed(call.batch).then(
            (embeddings) => {
              if (subscriber.closed) return;
              if (embeddings.length !== call.batch.length) {
                subscriber.error(
                  new FramewiseError(
                    ErrorCodes.MODEL_INVALID,
                    `embedder ${embedder.id} returned ${embeddings.length} embeddings for ${call.batch.length} frames`,
                  ),
                );
                return;
              }
              call.result = embeddings;
              // Hand the engine its next batch before this thread labels and writes this one.
              pump();
              emitDone();
              pump();
            },
            (err: unknown) => subscriber.error(err),
          );
        }
        if (ended && waiting.length === 0 && calls.length === 0) {
          'error' in ended ? subscriber.error(ended.error) : subscriber.complete();
        }
      };

      const subscription = source.subscribe({
        next: (frame) => {
          waiting.push(frame);
          pump();
        },
        error: (error: unknown) => {
          ended = { error };
          pump();
        },
        complete: () => {
          ended = {};
          pump();
        },
      });
      return () => {
        subscription.unsubscribe();
        waiting.length = 0;
        calls.length = 0;
        streams.clear();
      };
    });
}

/**
 * Credit for decodeThrough around embed(): every call in flight full, and one more batch
 * filling meanwhile.
 */
export function embedCredit(options: EmbedOptions = {}): number {
  return ((options.concurrency ?? DEFAULTS.embedConcurrency) + 1) * (options.batchSize ?? DEFAULTS.embedBatch);
}
