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
// - Errors are FramewiseErrors: INPUT_NOT_FOUND, NO_VIDEO_STREAM, DECODE_FAILED (not a video,
//   corrupt, truncated, ffmpeg failed), FFMPEG_MISSING; USAGE for bad options (thrown at call
//   time). Messages carry the meaningful lines of ffmpeg's stderr (warnings/errors, no banner).
// - Truncation/corruption policy: a non-zero ffmpeg exit is an error; so is a zero exit after
//   ffmpeg logged an error-level line or a corrupt/partial/truncated-packet warning (a half AVI
//   decodes "successfully" with only such warnings). This is strict for live URLs that start
//   mid-GOP, but there too every decoded frame is delivered before the error.
//
// Timestamps: the filter chain ends with a named `showinfo` filter, which logs each output frame's
// pts (in the time base it logs once at configuration) to stderr before the frame is written to
// stdout. ffmpeg runs with `-fps_mode passthrough`, so every frame leaving the filter graph is
// written exactly once (no CFR duplication or dropping): the k-th showinfo line describes the k-th
// rgb frame on stdout. Frames are matched to pts lines by that order (not by showinfo's `n:`, which
// restarts when a resolution change rebuilds the graph). stderr is never paused, and ffmpeg logs a
// frame's line before writing its bytes, so a frame's pts always arrives; a frame is held until its
// pts is known. With `fps`, the fps filter's output time base is 1/fps, so timestamps are index/fps
// shifted by the stream start. Without -copyts ffmpeg subtracts the file's start time (first
// frame ~0 ms); VFR gaps are kept.
import { type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { Observable, Subject, defer, startWith, tap, type OperatorFunction } from 'rxjs';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { assertLocalFile, ffmpegFailure, isUrl, meaningfulStderr, probe, requireBinary } from './probe.ts';
import type { CropPolicy, Frame } from '../core/types.ts';

export { ffmpegAvailable, probe, type VideoInfo } from './probe.ts';

export interface DecodeOptions {
  /** Output side in pixels; frames are size x size rgb24. Default DEFAULTS.inputSize (224). */
  size?: number;
  /** 'center' (default): scale the short side to size, center-crop; 'pad': fit the long side, pad black. */
  crop?: CropPolicy;
  /** Resample to this many frames per second (ffmpeg fps filter); undefined keeps the source rate. */
  fps?: number;
  streamId?: string; // default: the input path, or 'stdin'
  /** Bound on decoded frames buffered ahead of the consumer before ffmpeg's stdout is paused (default 8, DEFAULTS.decodeHighWaterMark). */
  highWaterMark?: number;
  /** Optional extra -vf filters inserted before the scale/crop (used by training-time augmentation). */
  preFilters?: string[];
}

/** Counters of one decode, for tests and benchmarks. */
export interface DecodeStats {
  /** Complete frames waiting for the consumer now, and the most there ever were. */
  bufferedFrames: number;
  maxBufferedFrames: number;
  /** Times the stdout byte stream was held back because highWaterMark frames were waiting. */
  pauses: number;
  /** Bytes read from ffmpeg's stdout so far. */
  bytesIn: number;
  /** Frames handed to the consumer. */
  framesOut: number;
}

/** A pull-based decode: an AsyncIterator over frames plus its process handle and counters. */
export interface FrameSource extends AsyncIterableIterator<Frame> {
  /** ffmpeg's pid once spawned (after the probe), else undefined. */
  readonly pid: number | undefined;
  readonly stats: Readonly<DecodeStats>;
  /** Settles once ffmpeg has exited (at once if it never started). */
  readonly exited: Promise<void>;
  /** Kills ffmpeg and ends the iteration; idempotent. */
  close(): void;
}

type Input = string | NodeJS.ReadableStream;

interface Resolved {
  size: number;
  crop: CropPolicy;
  fps: number | undefined;
  streamId: string;
  highWaterMark: number;
  preFilters: string[];
}

/** Frames as a cold Observable; backpressure only for synchronous subscribers (see the contract above). */
export function decode(input: Input, options: DecodeOptions = {}): Observable<Frame> {
  return decodeWithDemand(input, options, new Observable<number>((s) => s.next(Infinity)));
}

/** Frames as a cold AsyncIterable: pulling is the demand; `break` kills ffmpeg. */
export function decodeFrames(input: Input, options: DecodeOptions = {}): AsyncIterable<Frame> {
  const resolved = resolveOptions(input, options);
  return { [Symbol.asyncIterator]: () => new FfmpegFrameSource(input, resolved) };
}

/** One decode as a FrameSource (iterator + pid + stats): the primitive the others are built on. */
export function openFrameSource(input: Input, options: DecodeOptions = {}): FrameSource {
  return new FfmpegFrameSource(input, resolveOptions(input, options));
}

/**
 * Frames emitted only against credit: each value n on `demand$` allows n more frames (Infinity:
 * unbounded). Subscribed once per subscription, when the decode starts. Frames waiting for credit
 * stay in the decoder's bounded buffer, with ffmpeg paused.
 */
export function decodeWithDemand(input: Input, options: DecodeOptions, demand$: Observable<number>): Observable<Frame> {
  const resolved = resolveOptions(input, options);
  return new Observable<Frame>((subscriber) => {
    const source = new FfmpegFrameSource(input, resolved);
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
 * Decodes through a stage that emits exactly one output per input frame (embed, label, ...),
 * keeping at most `inFlight` frames between the decoder and the stage's output: the lossless
 * offline pipeline with bounded memory. A stage that drops frames would starve the credit loop.
 */
export function decodeThrough<T>(input: Input, options: DecodeOptions, stage: OperatorFunction<Frame, T>, inFlight = 16): Observable<T> {
  if (!Number.isInteger(inFlight) || inFlight < 1) {
    throw new FramewiseError(ErrorCodes.USAGE, `decodeThrough inFlight must be a positive integer, got ${inFlight}`);
  }
  return defer(() => {
    const credit$ = new Subject<number>();
    return stage(decodeWithDemand(input, options, credit$.pipe(startWith(inFlight)))).pipe(tap(() => credit$.next(1)));
  });
}

/**
 * 8-bit formats the scaler may work in (planar YUV of any subsampling, full or limited range, and
 * planar RGB). Listing them between the scale and `format=rgb24` makes ffmpeg resize in the
 * source's own format (its pick is the entry that loses nothing of the source) and convert to
 * rgb24 afterwards, on the small frame: for a 640x480 yuv420p source that is 2.6 ms of CPU per
 * frame instead of 5.0 (scaling and converting in one pass at full size). rgb24 must not be in
 * the list, or the two format filters merge and the scaler converts at full size again.
 */
const SCALE_FORMATS = 'yuv420p|yuvj420p|yuv422p|yuvj422p|yuv444p|yuvj444p|gbrp';

/** The -vf chain decode runs (exported for tests and for tools that must match decode exactly). */
export function decodeFilters(options: Pick<DecodeOptions, 'size' | 'crop' | 'fps' | 'preFilters'> = {}): string[] {
  const s = options.size ?? DEFAULTS.inputSize;
  const crop = options.crop ?? DEFAULTS.crop;
  // 'area' averages every source pixel under an output pixel: antialiased downscaling, and at
  // 640x480 -> 224 cheaper than swscale's bilinear, whose taps widen with the scale factor.
  const toRgb = [`format=${SCALE_FORMATS}`, 'format=rgb24'];
  const fit =
    crop === 'center'
      ? // The centered square of the display picture (sar: anamorphic sources keep their shape),
        // cut before scaling so the cut-off parts are never scaled, then s x s.
        [`crop=w='min(iw,ih/sar)':h='min(ih,iw*sar)'`, `scale=${s}:${s}:flags=area`, ...toRgb]
      : // Long side to s in display pixels, then black bars; rgb24 before pad so the bars are exact zeros.
        [
          `scale=w='max(1,min(${s},round(${s}*iw*sar/ih)))':h='max(1,min(${s},round(${s}*ih/(iw*sar))))':flags=area`,
          ...toRgb,
          `pad=${s}:${s}:(ow-iw)/2:(oh-ih)/2:color=black`,
        ];
  return [
    // fps first: later filters (augmentation, scaling) then work on the kept frames only.
    ...(options.fps !== undefined ? [`fps=${options.fps}`] : []),
    ...(options.preFilters ?? []),
    ...fit,
    'setsar=1',
    `${SHOWINFO}=checksum=0`,
  ];
}

const SHOWINFO = 'showinfo@framewise';

/**
 * Names the decode chain in the embedding cache (models/embedding-file.ts): a digest of
 * decodeFilters() for both crop policies, so any change to the chain makes embeddings computed
 * with the old one stale by itself; they are recomputed, never mixed with new ones.
 */
export const DECODE_REVISION = createHash('sha256')
  .update(JSON.stringify([decodeFilters({ crop: 'center' }), decodeFilters({ crop: 'pad' })]))
  .digest('hex')
  .slice(0, 12);

function resolveOptions(input: Input, o: DecodeOptions): Resolved {
  const usage = (msg: string) => new FramewiseError(ErrorCodes.USAGE, `decode: ${msg}`);
  const size = o.size ?? DEFAULTS.inputSize;
  if (!Number.isInteger(size) || size < 1 || size > 8192) throw usage(`size must be an integer in [1, 8192], got ${o.size}`);
  const crop = o.crop ?? DEFAULTS.crop;
  if (crop !== 'center' && crop !== 'pad') throw usage(`crop must be 'center' or 'pad', got ${String(o.crop)}`);
  if (o.fps !== undefined && !(Number.isFinite(o.fps) && o.fps > 0 && o.fps <= 1000)) throw usage(`fps must be in (0, 1000], got ${o.fps}`);
  const highWaterMark = o.highWaterMark ?? DEFAULTS.decodeHighWaterMark;
  if (!Number.isInteger(highWaterMark) || highWaterMark < 1) throw usage(`highWaterMark must be a positive integer, got ${o.highWaterMark}`);
  if (typeof input === 'string' && input.length === 0) throw usage('input is an empty string');
  if (typeof input !== 'string' && !(input && typeof input.pipe === 'function')) throw usage('input must be a path, a URL, "-" or a readable stream');
  return {
    size,
    crop,
    fps: o.fps,
    streamId: o.streamId ?? (typeof input === 'string' && input !== '-' ? input : 'stdin'),
    highWaterMark,
    preFilters: [...(o.preFilters ?? [])],
  };
}

type Waiter = { resolve: (r: IteratorResult<Frame>) => void; reject: (e: unknown) => void };

/** Lines of stderr kept for error messages (warnings and errors only; per-frame lines never). */
const DIAG_LINES = 60;
/** Warnings that mean frames were lost to a damaged input, which a zero exit code hides. */
const DAMAGE_WARNING = /corrupt|partial file|truncat|invalid data/i;

class FfmpegFrameSource implements FrameSource {
  readonly stats: DecodeStats = { bufferedFrames: 0, maxBufferedFrames: 0, pauses: 0, bytesIn: 0, framesOut: 0 };
  readonly exited: Promise<void>;
  private markExited!: () => void;

  private readonly frameBytes: number;
  private readonly label: string;
  private current: Uint8Array;
  private fill = 0;
  /** Complete frames not yet taken, oldest first. */
  private readonly ready: Uint8Array[] = [];
  /** Presentation times (ms) of cut-or-not-yet-cut frames, oldest first; undefined for NOPTS. */
  private readonly times: (number | undefined)[] = [];
  private timeBase: [number, number] | undefined;
  private lastTimestamp: number | undefined;
  /** Frame period (ms) for the rare frame without pts: the requested or probed rate. */
  private periodMs: number;
  /** The rest of a stdout chunk held back while highWaterMark frames wait; its ack is withheld. */
  private pendingWrite: { chunk: Buffer; offset: number; done: (err?: Error | null) => void } | null = null;
  private readonly waiters: Waiter[] = [];

  private proc: ChildProcess | undefined;
  private closed = false;
  private procEnded: { err?: Error & { inputStreamError?: Error } } | undefined;
  private stdoutEnded = false;
  private stderrEnded = false;
  private terminal: { error?: unknown } | undefined;
  private errorDelivered = false;
  private readonly diag: string[] = [];
  private damaged = false;

  constructor(
    private readonly input: Input,
    private readonly opts: Resolved,
  ) {
    this.frameBytes = opts.size * opts.size * 3;
    this.current = new Uint8Array(this.frameBytes);
    this.periodMs = 1000 / (opts.fps ?? 25);
    this.label = typeof input === 'string' ? input : 'input stream';
    this.exited = new Promise<void>((resolve) => (this.markExited = resolve));
    this.start().catch((err: unknown) => this.fail(err));
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Frame>> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.deliver();
    });
  }

  async return(): Promise<IteratorResult<Frame>> {
    this.close();
    return { value: undefined, done: true };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pendingWrite = null;
    this.ready.length = 0;
    this.stats.bufferedFrames = 0;
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
    this.kill();
  }

  private async start(): Promise<void> {
    const input = this.input;
    if (typeof input === 'string' && input !== '-' && !isUrl(input)) {
      assertLocalFile(input);
      const info = await probe(input);
      if (!this.opts.fps && info.fps > 0) this.periodMs = 1000 / info.fps;
    }
    const ffmpegPath = requireBinary('ffmpeg');
    if (this.closed) return this.markExited();

    const fromStream = typeof input !== 'string' || input === '-';
    const source = typeof input !== 'string' ? input : input === '-' ? process.stdin : isUrl(input) ? input : `file:${input}`;
    const command = ffmpeg(source as string).setFfmpegPath(ffmpegPath);
    command
      .inputOptions(['-hide_banner', '-nostats', '-loglevel', 'level+info', ...(fromStream ? [] : ['-nostdin'])])
      .outputOptions([
        ...['-map', '0:V:0', '-an', '-sn', '-dn'],
        ...['-vf', decodeFilters(this.opts).join(',')],
        ...['-fps_mode', 'passthrough', '-pix_fmt', 'rgb24', '-f', 'rawvideo'],
      ]);

    // emitClose: false, because fluent-ffmpeg kills ffmpeg 20 ms after its output stream emits
    // 'close', which can race a clean exit; completion is tracked through 'finish' instead.
    const sink = new Writable({
      highWaterMark: 0,
      emitClose: false,
      write: (chunk: Buffer, _enc, done) => {
        this.stats.bytesIn += chunk.length;
        if (this.closed) return done();
        this.feed(chunk, 0, done);
      },
    });
    sink.on('finish', () => {
      this.stdoutEnded = true;
      this.settle();
    });
    sink.on('error', () => {}); // destroyed on close(); nothing to report

    command.on('stderr', (line: string) => this.onStderrLine(line));
    command.on('start', () => {
      const proc = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
      this.proc = proc;
      if (!proc) return;
      proc.once('exit', () => this.markExited());
      proc.stderr?.once('close', () => {
        this.stderrEnded = true;
        this.deliver();
      });
      if (this.closed) this.kill();
    });
    command.on('end', () => {
      this.procEnded = {};
      this.settle();
    });
    command.on('error', (err: Error & { inputStreamError?: Error; code?: string }) => {
      this.procEnded = { err };
      if (!this.proc || err.code === 'ENOENT') {
        // ffmpeg never ran (or could not be spawned): no stdout will come to wait for.
        this.stdoutEnded = this.stderrEnded = true;
        this.markExited();
      }
      this.settle();
    });
    command.output(sink, { end: true }).run();
  }

  /** Cuts frames out of a stdout chunk; stops (without acking the chunk) while highWaterMark frames wait. */
  private feed(chunk: Buffer, offset: number, done: (err?: Error | null) => void): void {
    let pos = offset;
    while (pos < chunk.length) {
      if (this.ready.length >= this.opts.highWaterMark) {
        this.pendingWrite = { chunk, offset: pos, done };
        this.stats.pauses += 1;
        this.deliver();
        return;
      }
      const n = Math.min(chunk.length - pos, this.frameBytes - this.fill);
      this.current.set(chunk.subarray(pos, pos + n), this.fill);
      this.fill += n;
      pos += n;
      if (this.fill === this.frameBytes) {
        this.ready.push(this.current);
        this.current = new Uint8Array(this.frameBytes);
        this.fill = 0;
        this.stats.bufferedFrames = this.ready.length;
        if (this.ready.length > this.stats.maxBufferedFrames) this.stats.maxBufferedFrames = this.ready.length;
      }
    }
    done();
    this.deliver();
  }

  private onStderrLine(line: string): void {
    if (line.startsWith(`[${SHOWINFO} @`)) {
      const frame = /\] n:\s*\d+\s+pts:\s*(\S+)/.exec(line);
      if (frame) {
        this.times.push(this.toMs(frame[1]));
        this.deliver();
        return;
      }
      const config = /config in time_base: (\d+)\/(\d+)/.exec(line);
      if (config && Number(config[2]) > 0) this.timeBase = [Number(config[1]), Number(config[2])];
      return;
    }
    const level = /\[(info|verbose|debug|warning|error|fatal|panic)\] /.exec(line)?.[1];
    if (level === 'info' || level === 'verbose' || level === 'debug') return;
    if (level === 'error' || level === 'fatal' || level === 'panic') this.damaged = true;
    if (level === 'warning' && DAMAGE_WARNING.test(line) && !/deprecated pixel format/.test(line)) this.damaged = true;
    this.diag.push(line);
    if (this.diag.length > DIAG_LINES) this.diag.shift();
  }

  private toMs(pts: string): number | undefined {
    if (!/^-?\d+$/.test(pts) || !this.timeBase) return undefined; // NOPTS
    const [num, den] = this.timeBase;
    return (Number(pts) * num * 1000) / den;
  }

  /** Hands ready frames (with known pts) to waiting consumers, then the end or the error. */
  private deliver(): void {
    if (this.closed) return;
    while (this.waiters.length > 0) {
      const frame = this.takeFrame();
      if (frame) {
        this.waiters.shift()!.resolve({ value: frame, done: false });
        continue;
      }
      if (this.terminal && this.ready.length === 0) {
        const w = this.waiters.shift()!;
        if (this.terminal.error !== undefined && !this.errorDelivered) {
          this.errorDelivered = true;
          w.reject(this.terminal.error);
        } else {
          w.resolve({ value: undefined, done: true });
        }
        continue;
      }
      break;
    }
    if (this.pendingWrite && this.ready.length < this.opts.highWaterMark) {
      const { chunk, offset, done } = this.pendingWrite;
      this.pendingWrite = null;
      this.feed(chunk, offset, done);
    }
  }

  private takeFrame(): Frame | undefined {
    if (this.ready.length === 0) return undefined;
    // Its pts line is on its way (logged before the bytes were written) unless stderr has ended.
    if (this.times.length === 0 && !this.stderrEnded) return undefined;
    const rgb = this.ready.shift()!;
    this.stats.bufferedFrames = this.ready.length;
    const known = this.times.shift();
    const timestampMs = known ?? (this.lastTimestamp === undefined ? 0 : this.lastTimestamp + this.periodMs);
    this.lastTimestamp = timestampMs;
    const index = this.stats.framesOut;
    this.stats.framesOut += 1;
    return { streamId: this.opts.streamId, index, timestampMs, width: this.opts.size, height: this.opts.size, rgb };
  }

  /** Once ffmpeg has ended and all of stdout has been cut, decides how the stream ends. */
  private settle(): void {
    if (this.terminal || this.closed || !this.procEnded || !this.stdoutEnded) return;
    const err = this.procEnded.err;
    const decoded = this.stats.framesOut + this.ready.length;
    const after = decoded > 0 ? ` (after ${decoded} decoded frames, which were delivered)` : '';
    if (err?.inputStreamError) {
      this.terminal = { error: new FramewiseError(ErrorCodes.DECODE_FAILED, `reading the input stream failed: ${err.inputStreamError.message}`, { cause: err }) };
    } else if (err && /Cannot find ffmpeg/.test(err.message)) {
      this.terminal = { error: new FramewiseError(ErrorCodes.FFMPEG_MISSING, `ffmpeg could not be run: ${err.message}`, { cause: err }) };
    } else if (err) {
      const f = ffmpegFailure(this.label, this.diag.length ? this.diag : err.message, 'ffmpeg could not decode');
      this.terminal = { error: new FramewiseError(f.code, f.message + after, { cause: err }) };
    } else if (this.damaged) {
      const lines = meaningfulStderr(this.diag).map((l) => l.split(`file:${this.label}`).join(this.label));
      this.terminal = {
        error: new FramewiseError(
          ErrorCodes.DECODE_FAILED,
          `${this.label} is truncated or corrupt${after}:\n  ${lines.join('\n  ')}`,
        ),
      };
    } else if (this.fill > 0) {
      this.terminal = { error: new FramewiseError(ErrorCodes.DECODE_FAILED, `ffmpeg output for ${this.label} ended in the middle of a frame${after}`) };
    } else {
      this.terminal = {};
    }
    this.deliver();
  }

  /** An error before ffmpeg ran (probe, missing binary): the stream ends with it. */
  private fail(err: unknown): void {
    this.markExited();
    if (this.closed || this.terminal) return;
    this.terminal = {
      error: err instanceof FramewiseError ? err : new FramewiseError(ErrorCodes.DECODE_FAILED, `decode of ${this.label} failed: ${String(err)}`, { cause: err }),
    };
    this.deliver();
  }

  private kill(): void {
    const proc = this.proc;
    if (!proc) return; // not spawned yet: the 'start' handler kills it
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    // A paused stdout with unread data would keep its handle (and this process) alive.
    proc.stdout?.destroy();
    if (typeof this.input !== 'string' || this.input === '-') {
      const stream = typeof this.input === 'string' ? process.stdin : this.input;
      if (proc.stdin) stream.unpipe(proc.stdin);
      stream.pause();
      proc.stdin?.destroy();
    }
  }
}
