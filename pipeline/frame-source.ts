// One ffmpeg process (driven by fluent-ffmpeg) turning a file, a URL, stdin or a readable stream
// into size x size rgb24 Frames: the FrameSource every way of consuming a decode is built on
// (decode.ts has the contract and those ways). It probes local files first, spawns ffmpeg with the
// filter chain of decode-filters.ts, assembles frames from stdout under a bounded buffer that pauses
// ffmpeg, and matches each frame to its pts.
//
// Timestamps: the filter chain ends with a named `showinfo` filter, which logs each output frame's
// pts (in the time base it logs once at configuration) to stderr before the frame is written to
// stdout. ffmpeg runs with `-fps_mode passthrough` (`-vsync` before 5.1), so every frame leaving the filter graph is
// written exactly once (no CFR duplication or dropping): the k-th showinfo line describes the k-th
// rgb frame on stdout. Frames are matched to pts lines by that order (not by showinfo's `n:`, which
// restarts when a resolution change rebuilds the graph). stderr is never paused, and ffmpeg logs a
// frame's line before writing its bytes, so a frame's pts always arrives; a frame is held until its
// pts is known. With `fps`, the fps filter's output time base is 1/fps, so timestamps are index/fps
// shifted by the stream start. Without -copyts ffmpeg subtracts the file's start time (first
// frame ~0 ms); VFR gaps are kept.
import { type ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import type { CropPolicy, Frame } from '../core/types.ts';
import { decodeFilters, SHOWINFO, type DecodeFilterOptions } from './decode-filters.ts';
import { assertLocalFile, ffmpegFailure, isUrl, meaningfulStderr, passthroughOption, probe, requireBinary } from './probe.ts';

export interface DecodeOptions extends DecodeFilterOptions {
  streamId?: string; // default: the input path, or 'stdin'
  /** Bound on decoded frames buffered ahead of the consumer before ffmpeg's stdout is paused (default 8, DEFAULTS.decodeHighWaterMark). */
  highWaterMark?: number;
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

export type Input = string | NodeJS.ReadableStream;

export interface Resolved {
  size: number;
  crop: CropPolicy;
  fps: number | undefined;
  streamId: string;
  highWaterMark: number;
  preFilters: string[];
}

/** One decode as a FrameSource (iterator + pid + stats): the primitive the others are built on. */
export function openFrameSource(input: Input, options: DecodeOptions = {}): FrameSource {
  return new FfmpegFrameSource(input, resolveOptions(input, options));
}

export function resolveOptions(input: Input, o: DecodeOptions): Resolved {
  const usage = (msg: string) => new FramewiseError(ErrorCodes.USAGE, `decode: ${msg}`);
  const size = o.size ?? DEFAULTS.inputSize;
  if (!Number.isInteger(size) || size < 1 || size > 8192) throw usage(`size must be an integer in [1, 8192], got ${o.size}`);
  const crop = o.crop ?? DEFAULTS.crop;
  if (crop !== 'center' && crop !== 'pad') throw usage(`crop must be 'center' or 'pad', got ${String(o.crop)}`);
  const { min, max } = DEFAULTS.fpsRange;
  if (o.fps !== undefined && !(Number.isFinite(o.fps) && o.fps >= min && o.fps <= max)) throw usage(`fps must be in [${min}, ${max}], got ${o.fps}`);
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

export class FfmpegFrameSource implements FrameSource {
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
        ...[...passthroughOption(ffmpegPath), '-pix_fmt', 'rgb24', '-f', 'rawvideo'],
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
      this.terminal = {
        error: new FramewiseError(ErrorCodes.DECODE_FAILED, `reading the input stream failed: ${err.inputStreamError.message}`, { cause: err }),
      };
    } else if (err && /Cannot find ffmpeg/.test(err.message)) {
      this.terminal = { error: new FramewiseError(ErrorCodes.FFMPEG_MISSING, `ffmpeg could not be run: ${err.message}`, { cause: err }) };
    } else if (err) {
      const f = ffmpegFailure(this.label, this.diag.length ? this.diag : err.message, 'ffmpeg could not decode');
      this.terminal = { error: new FramewiseError(f.code, f.message + after, { cause: err }) };
    } else if (this.damaged) {
      const lines = meaningfulStderr(this.diag).map((l) => l.split(`file:${this.label}`).join(this.label));
      this.terminal = {
        error: new FramewiseError(ErrorCodes.DECODE_FAILED, `${this.label} is truncated or corrupt${after}:\n  ${lines.join('\n  ')}`),
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
      error:
        err instanceof FramewiseError ? err : new FramewiseError(ErrorCodes.DECODE_FAILED, `decode of ${this.label} failed: ${String(err)}`, { cause: err }),
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
