// A decode at a requested fps that still yields the frames of clips too short for the fps filter.
// ffmpeg's fps filter decides which output frame a source frame becomes only when the next source
// frame (or an EOF with a duration) arrives; a one-frame clip gives it neither, so it emits nothing
// and the clip would get no label at all. `eof_action=pass` would fix that case but changes the
// frame count of ordinary clips (their last frame is passed through as an extra one), and the
// embedding cache and the training labels rely on those counts. So: when the fps decode of a
// re-readable input (a file or URL) ends cleanly with no frame, the input is decoded once more
// at its own rate. Ordinary clips never take the second path; streams (stdin) cannot be re-read.
import type { Frame } from '../core/types.ts';
import { FfmpegFrameSource, type DecodeStats, type FrameSource, type Input, type Resolved } from './frame-source.ts';

export function openDecodeSource(input: Input, resolved: Resolved): FrameSource {
  const rereadable = typeof input === 'string' && input !== '-';
  if (resolved.fps === undefined || !rereadable) return new FfmpegFrameSource(input, resolved);
  return new FpsFallbackSource(input, resolved);
}

class FpsFallbackSource implements FrameSource {
  private current: FfmpegFrameSource;
  private retried = false;
  private closed = false;
  private readonly firstExited: Promise<void>;

  constructor(
    private readonly input: Input,
    private readonly resolved: Resolved,
  ) {
    this.current = new FfmpegFrameSource(input, resolved);
    this.firstExited = this.current.exited;
  }

  get pid(): number | undefined {
    return this.current.pid;
  }

  get stats(): Readonly<DecodeStats> {
    return this.current.stats;
  }

  get exited(): Promise<void> {
    // Both processes, when the second one ran.
    return this.firstExited.then(() => this.current.exited);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Frame>> {
    const r = await this.current.next();
    if (!r.done || this.retried || this.closed || this.current.stats.framesOut > 0) return r;
    // A clean end with no frame: the fps filter had nothing to decide on (see the header).
    this.retried = true;
    this.current = new FfmpegFrameSource(this.input, { ...this.resolved, fps: undefined });
    return this.current.next();
  }

  async return(): Promise<IteratorResult<Frame>> {
    this.close();
    return { value: undefined, done: true };
  }

  close(): void {
    this.closed = true;
    this.current.close();
  }
}
