// Low-level file writing for the sinks. Synchronous on purpose: each line or cue block is one
// write(2) to a file opened by us, so whatever is on disk at any moment (Ctrl-C, a crash, a
// reader tailing the file) ends on a whole line; the lines are small and local-disk writes take
// microseconds, so the event loop is not held up in practice.
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';

export function outputError(file: string, err: unknown): FramewiseError {
  if (err instanceof FramewiseError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot write ${file}: ${detail}`, { cause: err });
}

/** mkdir -p, mapped to E_OUTPUT_FAILED with the folder in the message. */
export function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    throw outputError(dir, err);
  }
}

/** A file written in whole chunks (lines, cue blocks), truncated at open. */
export class ChunkFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  static open(file: string): ChunkFile {
    try {
      return new ChunkFile(file, fs.openSync(file, 'w'));
    } catch (err) {
      throw outputError(file, err);
    }
  }

  /** One write call for the whole chunk (looped only if the OS returns a short write). */
  write(chunk: string): void {
    if (this.fd === null) throw outputError(this.path, new Error('file already closed'));
    const buf = Buffer.from(chunk, 'utf8');
    try {
      let off = 0;
      while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    } catch (err) {
      throw outputError(this.path, err);
    }
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fs.closeSync(fd);
    } catch (err) {
      throw outputError(this.path, err);
    }
  }
}

/** Writes a whole file under a temporary name in the same folder, then renames it over `file`,
 * so readers only ever see the previous complete version or the new complete one. */
export function writeFileAtomic(file: string, content: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`);
  try {
    fs.writeFileSync(tmp, content);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // The temp file may not exist; the original error is the one to report.
    }
    throw outputError(file, err);
  }
}

/** Probabilities and scores: 6 decimals are far below the model's precision and keep lines short. */
export function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Times in ms: microsecond resolution is enough for any video timestamp. */
export function round3(x: number): number {
  return Math.round(x * 1e3) / 1e3;
}
