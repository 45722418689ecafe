// A trained bundle together with the embedder it was trained on: what label, eval, serve and the
// queue worker all need. Checks that the two agree before any frame is decoded.
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { ensureBackend, type BackendRequest } from './backend.ts';
import type { Embedder } from './embedder.ts';
import { loadEmbeddingEngine, type EngineRequest } from './engine-choice.ts';
import type { PrecisionRequest } from './precision.ts';
import { loadBundle, type BundleMeta } from './recurrent/bundle.ts';
import type { RecurrentHead } from './recurrent/head.ts';

export interface OpenModel {
  head: RecurrentHead;
  meta: BundleMeta;
  embedder: Embedder;
  dispose(): void;
}

export interface OpenModelOptions {
  bundle: string;
  modelsDir?: string;
  /** Cache root for downloaded weights and ONNX exports. Default DEFAULTS.cacheDir. */
  cacheDir?: string;
  backend?: BackendRequest;
  /** Embedding engine and its threads (models/engine-choice.ts); defaults there (auto, cores). */
  engine?: EngineRequest;
  workers?: number;
  /** Embedder precision (models/precision.ts); default auto. */
  precision?: PrecisionRequest;
  /** Where an int8 export is calibrated when one must be made: `--calibrate`, else the run's inputs. */
  calibrate?: readonly string[];
  calibrationInputs?: readonly string[];
  /** Keep the embedder's work off this thread's event loop (the live server). */
  isolate?: boolean;
  onProgress?: (m: string) => void;
}

export async function openModel(o: OpenModelOptions): Promise<OpenModel> {
  // The backend first: the head's weights must be created on it, not on tfjs' default.
  await ensureBackend(o.backend);
  const { head, meta } = await loadBundle(o.bundle);
  let embedder: Embedder;
  try {
    embedder = await loadEmbeddingEngine({
      id: meta.embedderId,
      modelsDir: o.modelsDir,
      cacheDir: o.cacheDir,
      backend: o.backend,
      engine: o.engine,
      workers: o.workers,
      precision: o.precision,
      calibrate: o.calibrate,
      calibrationInputs: o.calibrationInputs,
      isolate: o.isolate,
      onProgress: o.onProgress,
    });
  } catch (err) {
    head.dispose();
    if (err instanceof FramewiseError) {
      throw new FramewiseError(err.code, `bundle ${o.bundle} needs embedder ${meta.embedderId}: ${err.message}`, { cause: err });
    }
    throw err;
  }
  if (embedder.dim !== meta.embeddingDim) {
    head.dispose();
    embedder.dispose();
    throw new FramewiseError(
      ErrorCodes.MODEL_INVALID,
      `bundle ${o.bundle} expects ${meta.embeddingDim}-d embeddings but ${embedder.id} gives ${embedder.dim}-d`,
    );
  }
  const trainedOn = meta.embeddingPrecision ?? 'fp32';
  const runsOn = embedder.precision ?? 'fp32';
  if (trainedOn !== runsOn) {
    // Allowed: the int8 export is only used after its embeddings were checked against fp32's
    // (models/onnx/int8-agreement.ts); said once so that a user comparing runs knows.
    (o.onProgress ?? ((l: string) => process.stderr.write(l + '\n')))(
      `framewise: note: bundle ${o.bundle} was trained on ${trainedOn} embeddings and runs on ${runsOn} ones (allowed: the int8 export passed its agreement check with fp32; --precision ${trainedOn} to match)`,
    );
  }
  return {
    head,
    meta,
    embedder,
    dispose: () => {
      head.dispose();
      embedder.dispose();
    },
  };
}
