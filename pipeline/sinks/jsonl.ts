// `<name>.frames.jsonl`: one JSON object per labeled frame, probabilities raw (unsmoothed) as an
// object from class label to probability. Also the `--out -` stream form for pipes, and the reader
// that turns such a file back into FrameLabels (the overlay draws from it).
import fs from 'node:fs';
import path from 'node:path';
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

  /** One write(2) for all the lines: the file still only ever ends on a whole line. */
  frameBatch(labels: readonly FrameLabel[]): void {
    let text = '';
    for (const l of labels) text += frameLine(l, this.classes);
    if (text) this.file.write(text);
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

/** Reads a `<name>.frames.jsonl` back into FrameLabels (class order from `classes` or the first line). */
export function readFramesJsonl(file: string, classes?: readonly string[]): { labels: FrameLabel[]; classes: string[] } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `cannot read labels ${file}: ${(err as Error).message}`, { cause: err });
  }
  const labels: FrameLabel[] = [];
  let order = classes ? [...classes] : undefined;
  text.split('\n').forEach((line, n) => {
    if (line.trim() === '') return;
    let row: { index?: unknown; timestampMs?: unknown; label?: unknown; score?: unknown; probs?: unknown; streamId?: unknown };
    try {
      row = JSON.parse(line);
    } catch (err) {
      throw new FramewiseError(ErrorCodes.USAGE, `${file}:${n + 1}: not JSON`, { cause: err });
    }
    const probs = row.probs as Record<string, unknown> | undefined;
    if (typeof row.timestampMs !== 'number' || typeof row.label !== 'string' || typeof row.score !== 'number' || !probs || typeof probs !== 'object') {
      throw new FramewiseError(ErrorCodes.USAGE, `${file}:${n + 1}: expected {index, timestampMs, label, score, probs}`);
    }
    order ??= Object.keys(probs);
    labels.push({
      streamId: typeof row.streamId === 'string' ? row.streamId : path.basename(file),
      index: typeof row.index === 'number' ? row.index : labels.length,
      timestampMs: row.timestampMs,
      label: row.label,
      score: row.score,
      probs: Float32Array.from(order, (c) => Number(probs[c] ?? 0)),
    });
  });
  return { labels, classes: order ?? [] };
}
