// A trained bundle together with the embedder it was trained on: what label, eval, serve and the
// queue worker all need. Checks that the two agree before any frame is decoded.
import { featureDim } from './motion.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { ensureBackend, type BackendRequest } from './backend.ts';
import { DEFAULTS } from '../core/defaults.ts';
import type { Embedder } from './embedder.ts';
import { loadEmbeddingEngine, type EngineEmbedder, type EngineRequest } from './engine-choice.ts';
import type { PrecisionRequest } from './precision.ts';
import { INT8_THRESHOLDS } from './onnx/int8-agreement.ts';
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
  /**
   * Int8 embeddings for a bundle trained on fp32 ones: the least share of frames whose label must
   * equal fp32's, measured on the bundle's first use with that int8 file (models/onnx/int8-label-check.ts).
   * Below it `int8` is refused (E_MODEL_INVALID) and `auto` falls back to fp32. Default 0.98; 0 skips the check.
   */
  int8MinLabelAgreement?: number;
  onProgress?: (m: string) => void;
}

/**
 * The per-bundle label check of int8 embeddings (cached per bundle and int8 file): printed; below
 * the threshold, `int8` is refused and `auto` reloads the embedder in fp32.
 */
async function checkInt8Labels(
  o: OpenModelOptions,
  head: RecurrentHead,
  meta: BundleMeta,
  embedder: EngineEmbedder,
  loadFp32: () => Promise<EngineEmbedder>,
): Promise<EngineEmbedder> {
  const threshold = o.int8MinLabelAgreement ?? INT8_THRESHOLDS.labelAgreement;
  if (embedder.precision !== 'int8' || !embedder.int8File || threshold <= 0) return embedder;
  const say = o.onProgress ?? ((l: string) => process.stderr.write(l + '\n'));
  // Trained on int8 embeddings, int8 is this bundle's own input: fp32 is no reference for it.
  if ((meta.embeddingPrecision ?? 'fp32') === 'int8') return embedder;
  const { int8LabelAgreement, describeLabelAgreement, assertLabelAgreement, defaultLabelCheckData, calibrationSources } =
    await import('./onnx/int8-label-check.ts');
  let record;
  try {
    record = await int8LabelAgreement({
      bundleDir: o.bundle,
      head,
      meta,
      int8File: embedder.int8File,
      sources: [...(await calibrationSources(embedder.int8File)), ...(o.calibrate ?? []), ...(o.calibrationInputs ?? []), defaultLabelCheckData(o.modelsDir)],
      modelsDir: o.modelsDir,
      cacheDir: o.cacheDir ?? DEFAULTS.cacheDir,
    });
    say(`framewise: int8 label check of bundle ${o.bundle}: ${describeLabelAgreement(record)}`);
    assertLabelAgreement(record, o.bundle, threshold);
    return embedder;
  } catch (err) {
    if ((o.precision ?? 'auto') !== 'auto') {
      await embedder.close();
      throw err;
    }
    say(`framewise: precision fp32 for ${meta.embedderId} (auto: ${err instanceof Error ? err.message : String(err)})`);
    await embedder.close();
    return loadFp32();
  }
}

export async function openModel(o: OpenModelOptions): Promise<OpenModel> {
  // The backend first: the head's weights must be created on it, not on tfjs' default.
  await ensureBackend(o.backend);
  const { head, meta } = await loadBundle(o.bundle);
  let embedder: EngineEmbedder;
  const load = (precision: PrecisionRequest | undefined) =>
    loadEmbeddingEngine({
      id: meta.embedderId,
      modelsDir: o.modelsDir,
      cacheDir: o.cacheDir,
      backend: o.backend,
      engine: o.engine,
      workers: o.workers,
      precision,
      calibrate: o.calibrate,
      calibrationInputs: o.calibrationInputs,
      isolate: o.isolate,
      onProgress: o.onProgress,
    });
  try {
    embedder = await load(o.precision);
    embedder = await checkInt8Labels(o, head, meta, embedder, () => load('fp32'));
  } catch (err) {
    head.dispose();
    if (err instanceof FramewiseError) {
      throw new FramewiseError(err.code, `bundle ${o.bundle} needs embedder ${meta.embedderId}: ${err.message}`, { cause: err });
    }
    throw err;
  }
  const features = meta.features ?? 'appearance';
  const inputDim = featureDim(embedder.dim, features);
  if (inputDim !== meta.embeddingDim) {
    head.dispose();
    embedder.dispose();
    throw new FramewiseError(
      ErrorCodes.MODEL_INVALID,
      `bundle ${o.bundle} expects ${meta.embeddingDim}-d inputs but ${embedder.id} with ${features} gives ${inputDim}-d`,
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
