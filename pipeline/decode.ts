// The frame source: one ffmpeg process (driven by fluent-ffmpeg) per subscription, turning a file,
// a URL, stdin or a readable stream into size x size rgb24 Frames with their stream timestamps.
//
// Contract
// - Cold: nothing runs until subscribed/iterated; each subscription or iteration spawns exactly
//   one ffmpeg (fluent-ffmpeg also runs `ffmpeg -formats`/`-encoders` once per process to check
//   capabilities). Local files are probed with ffprobe first, so a missing file, a non-video or
//   an audio-only file fails with INPUT_NOT_FOUND / DECODE_FAILED / NO_VIDEO_STREAM before decoding.
// - Frames: `index` is 0-based and contiguous; `timestampMs` is the frame's presentation time from
//   ffmpeg (see "Timestamps" below); `rgb` is exactly size*size*3 bytes and owns its ArrayBuffer
//   (transferable to a worker, never reused by the decoder).
// - Lossless, demand-driven (the offline rate policy). The decoder holds at most `highWaterMark`
//   complete frames the consumer has not taken, plus the one being assembled. When that many wait,
//   the rest of the current stdout chunk is held back and the chunk is not acknowledged, so Node's
//   pipe pauses ffmpeg's stdout; the OS pipe then fills and ffmpeg blocks in write(). Memory stays
//   bounded whatever the consumer's speed. Three ways to consume, all on the same source:
//     * `decodeFrames()`: an AsyncIterable. The pull is the demand: `for await` asks for the next
//       frame only after its body (sync or async) has finished. Breaking out kills ffmpeg.
//     * `decode()`: an Observable that emits the next frame after `subscriber.next` returns. That
//       is backpressure for synchronous consumers only: RxJS has no demand channel, so an async
//       stage (concatMap, embed's batching) would accept frames as fast as ffmpeg makes them.
//     * `decodeWithDemand(input, options, demand$)`: credit-based, like Reactive Streams'
//       request(n): each number on `demand$` allows that many more frames; with no credit left,
//       frames wait in the bounded buffer and ffmpeg is paused. `decodeThrough()` wires the usual
//       loop: run a 1:1 stage (embed, label, ...) with at most `inFlight` frames inside it.
// - Teardown: unsubscribing, `return()`/`break`, or `close()` SIGKILLs ffmpeg at once (no orphan)
//   and drops buffered frames. Completion and errors come only after every frame ffmpeg wrote has
//   been delivered: a truncated file yields its decodable frames, then the error.
// - With `fps`, a clip too short for ffmpeg's fps filter (one frame: it emits nothing) is decoded
//   again at its own rate, so every decodable frame is delivered (fps-fallback-source.ts).
// - Errors are FramewiseErrors: INPUT_NOT_FOUND, NO_VIDEO_STREAM, DECODE_FAILED (not a video,
//   corrupt, truncated, ffmpeg failed), FFMPEG_MISSING; USAGE for bad options (thrown at call
//   time). Messages carry the meaningful lines of ffmpeg's stderr (warnings/errors, no banner).
// - Truncation/corruption policy: a non-zero ffmpeg exit is an error; so is a zero exit after
//   ffmpeg logged an error-level line or a corrupt/partial/truncated-packet warning (a half AVI
//   decodes "successfully" with only such warnings). This is strict for live URLs that start
//   mid-GOP, but there too every decoded frame is delivered before the error.
import { Observable, Subject, defer, startWith, tap, type OperatorFunction } from 'rxjs';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import type { Frame } from '../core/types.ts';
import { resolveOptions, type DecodeOptions, type Input } from './frame-source.ts';
import { openDecodeSource } from './fps-fallback-source.ts';

export { decodeFilters, DECODE_REVISION, type DecodeFilterOptions } from './decode-filters.ts';
export { openFrameSource, type DecodeOptions, type DecodeStats, type FrameSource } from './frame-source.ts';
export { ffmpegAvailable, probe, type VideoInfo } from './probe.ts';

/** Frames as a cold Observable; backpressure only for synchronous subscribers (see the contract above). */
export function decode(input: Input, options: DecodeOptions = {}): Observable<Frame> {
  return decodeWithDemand(input, options, new Observable<number>((s) => s.next(Infinity)));
}

/** Frames as a cold AsyncIterable: pulling is the demand; `break` kills ffmpeg. */
export function decodeFrames(input: Input, options: DecodeOptions = {}): AsyncIterable<Frame> {
  const resolved = resolveOptions(input, options);
  return { [Symbol.asyncIterator]: () => openDecodeSource(input, resolved) };
}

/**
 * Frames emitted only against credit: each value n on `demand$` allows n more frames (Infinity:
 * unbounded). Subscribed once per subscription, when the decode starts. Frames waiting for credit
 * stay in the decoder's bounded buffer, with ffmpeg paused.
 */
export function decodeWithDemand(input: Input, options: DecodeOptions, demand$: Observable<number>): Observable<Frame> {
  const resolved = resolveOptions(input, options);
  return new Observable<Frame>((subscriber) => {
    const source = openDecodeSource(input, resolved);
    let credit = 0;
    let pumping = false;
    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      try {
        while (credit > 0 && !subscriber.closed) {
          const r = await source.next();
          if (subscriber.closed) return;
          if (r.done) {
            subscriber.complete();
            return;
          }
          credit -= 1;
          subscriber.next(r.value);
        }
      } catch (err) {
        subscriber.error(err);
      } finally {
        pumping = false;
      }
    };
    const demandSub = demand$.subscribe({
      next: (n) => {
        if (!(n > 0) || (!Number.isInteger(n) && n !== Infinity)) {
          subscriber.error(new FramewiseError(ErrorCodes.USAGE, `decode demand must be a positive integer or Infinity, got ${n}`));
          return;
        }
        credit += n;
        void pump();
      },
      error: (err: unknown) => subscriber.error(err),
    });
    return () => {
      demandSub.unsubscribe();
      source.close();
    };
  });
}

/**
 * Decodes through a stage that emits exactly one output per input frame (embed, label, ...), or
 * one output per run of frames with `framesOf` saying how many, keeping at most `inFlight` frames
 * between the decoder and the stage's output: the lossless offline pipeline with bounded memory.
 * A stage that drops frames would starve the credit loop.
 */
export function decodeThrough<T>(
  input: Input,
  options: DecodeOptions,
  stage: OperatorFunction<Frame, T>,
  inFlight = 16,
  /** Frames one emitted value stands for (a stage emitting chunks returns their length): the credit it gives back. */
  framesOf: (value: T) => number = () => 1,
): Observable<T> {
  if (!Number.isInteger(inFlight) || inFlight < 1) {
    throw new FramewiseError(ErrorCodes.USAGE, `decodeThrough inFlight must be a positive integer, got ${inFlight}`);
  }
  return defer(() => {
    const credit$ = new Subject<number>();
    return stage(decodeWithDemand(input, options, credit$.pipe(startWith(inFlight)))).pipe(
      tap((v) => {
        const n = framesOf(v);
        if (n > 0) credit$.next(n);
      }),
    );
  });
}
