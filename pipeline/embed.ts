// The embed stage: Frame -> EmbeddedFrame through an Embedder, lossless and in order.
// One model call at a time; frames that arrive meanwhile wait and go together in the next call
// (up to batchSize). It never waits for a batch to fill, so a slow source gets batch 1 and no
// added latency, while a fast (offline) source gets full batches.
import { Observable, type OperatorFunction } from 'rxjs';
import type { Embedder } from '../models/embedder.ts';
import { DEFAULTS } from './defaults.ts';
import { ErrorCodes, FramewiseError } from './errors.ts';
import type { EmbeddedFrame, Frame } from './types.ts';

export interface EmbedOptions {
  /** Most frames per embedder call, an integer in [1, 1024]. Default DEFAULTS.embedBatch. */
  batchSize?: number;
}

/**
 * Embeds every frame exactly once and emits in arrival order. Frames waiting for the model are held
 * here and RxJS has no demand channel, so for bounded memory run it under a credit loop
 * (`decodeThrough(input, options, embed(embedder), 2 * batchSize)` in pipeline/decode.ts).
 * An error from the source is delivered after the frames already received have been embedded;
 * an embedder error ends the stream at once. Unsubscribing drops waiting frames.
 */
export function embed(embedder: Embedder, options: EmbedOptions = {}): OperatorFunction<Frame, EmbeddedFrame> {
  const batchSize = options.batchSize ?? DEFAULTS.embedBatch;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1024) {
    throw new FramewiseError(ErrorCodes.USAGE, `embed batchSize must be an integer in [1, 1024], got ${batchSize}`);
  }
  return (source) =>
    new Observable<EmbeddedFrame>((subscriber) => {
      const waiting: Frame[] = [];
      let busy = false;
      let ended: { error?: unknown } | undefined;

      const pump = (): void => {
        if (busy || subscriber.closed) return;
        if (waiting.length === 0) {
          if (ended) ('error' in ended ? subscriber.error(ended.error) : subscriber.complete());
          return;
        }
        const batch = waiting.splice(0, batchSize);
        busy = true;
        embedder.embed(batch).then(
          (embeddings) => {
            busy = false;
            if (subscriber.closed) return;
            if (embeddings.length !== batch.length) {
              subscriber.error(
                new FramewiseError(ErrorCodes.MODEL_INVALID, `embedder ${embedder.id} returned ${embeddings.length} embeddings for ${batch.length} frames`),
              );
              return;
            }
            batch.forEach((f, i) =>
              subscriber.next({ streamId: f.streamId, index: f.index, timestampMs: f.timestampMs, embedding: embeddings[i] }),
            );
            pump();
          },
          (err: unknown) => {
            busy = false;
            subscriber.error(err);
          },
        );
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
      };
    });
}
