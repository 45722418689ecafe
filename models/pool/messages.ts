// The messages between the pool (main thread) and its worker threads, and how errors cross the
// thread boundary: structured clone keeps an Error's message but drops its class and `code`, so
// errors travel as plain data and are rebuilt as FramewiseErrors with the worker's stack as cause.
import { ErrorCodes, FramewiseError, type ErrorCode } from '../../core/errors.ts';

/** What a worker loads: `(await import(module))[exportName](config)` must resolve to an Embedder. */
export interface EmbedderFactory {
  /** A file URL (or anything `import()` takes) of an ES module; TypeScript is fine. */
  module: string;
  exportName: string;
  /** Passed to the factory; must survive structured clone (no functions). */
  config: Record<string, unknown>;
}

export interface WorkerInit {
  /** The worker module the boot script imports (file URL of worker.ts). */
  entry: string;
  factory: EmbedderFactory;
}

export type ToWorker =
  | { type: 'embed'; taskId: number; size: number; pixels: Uint8Array[] }
  | { type: 'classify'; taskId: number; size: number; pixels: Uint8Array; topK?: number }
  /** Finish the task in hand, free the embedder, end the thread (see the pool's close()). */
  | { type: 'close' };

export interface ReadyInfo {
  id: string;
  dim: number;
  inputSize: number;
  macsPerFrame?: number;
}

export type FromWorker =
  | { type: 'ready'; info: ReadyInfo }
  | { type: 'load-failed'; error: SerializedError }
  | { type: 'log'; line: string }
  | { type: 'done'; taskId: number; embeddings?: Float32Array[]; classes?: { className: string; probability: number }[] }
  | { type: 'failed'; taskId: number; error: SerializedError };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: SerializedError;
}

export function serializeError(err: unknown, depth = 0): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const out: SerializedError = { name: err.name, message: err.message, stack: err.stack };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') out.code = code;
  if (err.cause !== undefined && depth < 4) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

/** The worker's Error, rebuilt with its name, message and stack (kept as the cause chain). */
function rebuild(e: SerializedError): Error {
  const err = new Error(e.message, e.cause ? { cause: rebuild(e.cause) } : undefined);
  err.name = e.name;
  if (e.stack) err.stack = e.stack;
  if (e.code) (err as { code?: string }).code = e.code;
  return err;
}

/**
 * A FramewiseError for the caller: the worker's own code when it threw a FramewiseError (so
 * E_MODEL_INVALID stays E_MODEL_INVALID across the thread hop), else `fallback`; the worker's
 * error, with its stack, is the cause.
 */
export function deserializeError(e: SerializedError, fallback: ErrorCode, context: string): FramewiseError {
  const code = e.code && KNOWN_CODES.has(e.code) ? (e.code as ErrorCode) : fallback;
  const message = e.code && KNOWN_CODES.has(e.code) ? e.message : `${context}: ${e.message}`;
  return new FramewiseError(code, message, { cause: rebuild(e) });
}
