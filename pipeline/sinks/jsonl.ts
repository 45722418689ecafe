// `<name>.frames.jsonl`: one JSON object per labeled frame, probabilities raw (unsmoothed) as an
// object from class label to probability. Also the `--out -` stream form for pipes.
import type { Writable } from 'node:stream';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { FrameLabel } from '../../core/types.ts';
import { ChunkFile, round3, round6 } from './files.ts';
import type { LabelSink } from './sink.ts';

/** The JSON object of one line; `streamId` only in stream mode, where inputs share one pipe. */
export function frameRecord(label: FrameLabel, classes: readonly string[], streamId?: string): Record<string, unknown> {
  const probs: Record<string, number> = {};
  for (let c = 0; c < classes.length; c++) probs[classes[c]] = round6(label.probs[c]);
  return {
    ...(streamId === undefined ? {} : { streamId }),
    index: label.index,
    timestampMs: round3(label.timestampMs),
    label: label.label,
    score: round6(label.score),
    probs,
  };
}

export function frameLine(label: FrameLabel, classes: readonly string[], streamId?: string): string {
  return `${JSON.stringify(frameRecord(label, classes, streamId))}\n`;
}

export class JsonlFileSink implements LabelSink {
  private readonly file: ChunkFile;

  constructor(
    readonly path: string,
    private readonly classes: readonly string[],
  ) {
    this.file = ChunkFile.open(path);
  }

  frame(label: FrameLabel): void {
    this.file.write(frameLine(label, this.classes));
  }

  segments(): void {}

  close(): void {
    this.file.close();
  }
}

/**
 * JSONL onto a shared stream (stdout for `--out -`). Each line is one `write` call, so lines from
 * inputs labeled concurrently interleave whole. Waits for 'drain' when the pipe is full; the
 * stream is not ended on close (other inputs may still be writing to it).
 */
export class JsonlStreamSink implements LabelSink {
  readonly path = '-';
  private failure: Error | null = null;
  private readonly onError = (err: Error) => {
    this.failure = err;
  };

  constructor(
    private readonly out: Writable,
    private readonly streamId: string,
    private readonly classes: readonly string[],
  ) {
    out.on('error', this.onError);
  }

  async frame(label: FrameLabel): Promise<void> {
    this.check();
    if (this.out.destroyed || this.out.writableEnded) {
      throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, 'cannot write -: the output stream is closed');
    }
    if (!this.out.write(frameLine(label, this.classes, this.streamId))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.out.off('drain', done);
          this.out.off('close', done);
          this.out.off('error', done);
          resolve();
        };
        this.out.on('drain', done);
        this.out.on('close', done);
        this.out.on('error', done);
      });
      this.check();
    }
  }

  segments(): void {}

  close(): void {
    this.out.off('error', this.onError);
  }

  private check(): void {
    if (this.failure) {
      throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot write -: ${this.failure.message}`, { cause: this.failure });
    }
  }
}
