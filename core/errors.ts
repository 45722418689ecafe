// One error family for all of framewise: a stable `code` that scripts, exit codes and the
// WebSocket protocol can rely on, and the original `cause` kept for debugging.

export const ErrorCodes = {
  /** The command line or an option is wrong (exit code 2). */
  USAGE: 'E_USAGE',
  /** An input file or URL does not exist or cannot be opened. */
  INPUT_NOT_FOUND: 'E_INPUT_NOT_FOUND',
  /** ffmpeg could not read the input as a video (not a video, corrupt, truncated). */
  DECODE_FAILED: 'E_DECODE_FAILED',
  /** The input has no video stream (e.g. audio only). */
  NO_VIDEO_STREAM: 'E_NO_VIDEO_STREAM',
  /** ffmpeg or ffprobe is not installed or not runnable. */
  FFMPEG_MISSING: 'E_FFMPEG_MISSING',
  /** No weights for an embedder could be found or fetched. */
  MODEL_NOT_FOUND: 'E_MODEL_NOT_FOUND',
  /** Weights or a bundle exist but are unreadable or inconsistent. */
  MODEL_INVALID: 'E_MODEL_INVALID',
  /** A requested compute backend or engine cannot be used. */
  BACKEND_UNAVAILABLE: 'E_BACKEND_UNAVAILABLE',
  /** A dataset folder is malformed (no classes, label files out of step with videos, ...). */
  DATASET_INVALID: 'E_DATASET_INVALID',
  /** Training stopped on a failed sanity check (e.g. initial loss far from ln C). */
  TRAINING_CHECK_FAILED: 'E_TRAINING_CHECK_FAILED',
  /** An output could not be written. */
  OUTPUT_FAILED: 'E_OUTPUT_FAILED',
  /** A WebSocket message is malformed, unknown, oversized or out of order. */
  PROTOCOL: 'E_PROTOCOL',
  /** The server is at its cap of concurrent sessions (or jobs); try again later. */
  BUSY: 'E_BUSY',
  /** A path outside the served media folder (`..`, another absolute path, a symlink out), or a
   * request to the server from a foreign Origin or under an unexpected Host name. */
  FORBIDDEN: 'E_FORBIDDEN',
  /** The server needs its token (`serve --token`, or the one it generated and printed) and got none or another. */
  UNAUTHORIZED: 'E_UNAUTHORIZED',
  /** A worker (thread or process) died or failed. */
  WORKER_FAILED: 'E_WORKER_FAILED',
  /** The job queue's Redis cannot be reached (`framewise queue`, `framewise worker`). */
  QUEUE_UNAVAILABLE: 'E_QUEUE_UNAVAILABLE',
  /** The operation was cancelled (unsubscribe, Ctrl-C, shutdown). */
  CANCELLED: 'E_CANCELLED',
  /** A teach-only server has no trained model yet (record clips and train one first). */
  NO_MODEL: 'E_NO_MODEL',
  /** A training started from the Teach view failed; the previous model stays in use. */
  TRAINING_FAILED: 'E_TRAINING_FAILED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class FramewiseError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FramewiseError';
    this.code = code;
  }
}

/** Wraps anything thrown into a FramewiseError, keeping it as the cause. */
export function asFramewiseError(err: unknown, code: ErrorCode, context: string): FramewiseError {
  if (err instanceof FramewiseError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new FramewiseError(code, `${context}: ${detail}`, { cause: err });
}

/** `value` when it is an integer in [min, max]; else E_USAGE "<name> must be an integer in [min, max], got <value>". */
export function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FramewiseError(ErrorCodes.USAGE, `${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}
