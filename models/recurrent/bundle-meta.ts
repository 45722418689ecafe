// What a bundle's framewise.json holds, its checks, and the step from a loaded stock layers model
// (model.json + weights) to our head. Browser-safe: the server's loadBundle (bundle.ts, files via
// node:fs) and the on-device client (files over HTTP) both end here, so both build the same head.
import type * as tf from '@tensorflow/tfjs';
import { FramewiseError } from '../../core/errors.ts';
import type { CropPolicy } from '../../core/types.ts';
import { appearanceDim, FEATURE_SETS, type FeatureSet } from '../motion.ts';
import { EMBEDDER_IDS } from '../registry.ts';
import type { UnknownFarMeta } from '../unknown-rule.ts';
import { headFromSpec, type HeadSpec, type NamedWeight, type RecurrentHead } from './head-math.ts';

// Version 2 added `unknownBelow` and `unknownFar`; version 1 bundles (without them) still load and never say unknown.
// Version 3 added `features`; older bundles load as 'appearance' (the embedding alone).
// Version 4 added `motionGain`; version 3 bundles (without it) load with gain 1, as they were trained.
export const BUNDLE_FORMAT_VERSION = 4;
/** The oldest format version this framewise still reads. */
const OLDEST_READABLE_VERSION = 1;
export const BUNDLE_FILES = { model: 'model.json', weights: 'weights.bin', meta: 'framewise.json' } as const;

/** What the caller describes when saving; the head's own shape is filled in by saveBundle. */
export interface BundleInfo {
  /** Class labels in softmax order (length = head classes). */
  classes: string[];
  /** Embedder id, e.g. 'mobilenet_v2_1.0_224'. */
  embedderId: string;
  /** What the head takes per frame: the embedding alone or with the motion stream (models/motion.ts); absent in older bundles: 'appearance'. */
  features?: FeatureSet;
  /** Precision of the embeddings it was trained on (models/precision.ts); absent in older bundles: fp32. */
  embeddingPrecision?: 'fp32' | 'int8';
  /** Frames per second the head was trained at; null = source rate. */
  fps: number | null;
  crop: CropPolicy;
  /** The training configuration (free-form, e.g. the resolved CLI options). */
  training?: Record<string, unknown>;
  /** Dataset summary (free-form: root, counts per class, splits, ...). */
  dataset?: Record<string, unknown>;
  /** Evaluation metrics (free-form, e.g. models/metrics.ts output). */
  metrics?: Record<string, unknown>;
  /**
   * Frames whose top probability is below this are labeled `unknown` ("none of these"). Calibrated
   * at train time on held-out frames (training/unknown-threshold.ts); absent or 0: never unknown.
   */
  unknownBelow?: number;
  /** Frames whose embedding is farther than `beyond` from every class centroid are `unknown` too (models/unknown-rule.ts). */
  unknownFar?: UnknownFarMeta;
  /** How `unknownBelow` was chosen (data, quantile, frames), for the record. */
  unknownCalibration?: Record<string, unknown>;
}

/** framewise.json: what the caller described, plus the head's architecture (HeadSpec documents
 * each field; note that the stock layers model in model.json does not include the input
 * normalisation, so a browser running it subtracts the running mean itself). */
export interface BundleMeta extends BundleInfo, Omit<HeadSpec, 'inputDim' | 'classes'> {
  formatVersion: number;
  /** Floats per frame the head expects: the embedder's output length, plus the motion stream's if `features` has it. */
  embeddingDim: number;
  createdAt: string;
}

/** The head's spec as framewise.json describes it. */
export function specFromMeta(meta: BundleMeta): HeadSpec {
  return {
    inputDim: meta.embeddingDim,
    classes: meta.classes.length,
    cell: meta.cell,
    layers: meta.layers,
    hidden: meta.hidden,
    projection: meta.projection,
    dropout: meta.dropout,
    seed: meta.seed,
    inputNorm: meta.inputNorm,
    inputNormDims: meta.inputNormDims,
    motionGain: meta.motionGain,
  };
}

/**
 * Our head with the weights of the bundle's stock layers model (which the caller loaded and
 * disposes). Any mismatch with framewise.json is E_MODEL_INVALID via `invalid`.
 */
export function headFromLayersModel(model: tf.LayersModel, meta: BundleMeta, invalid: (what: string, cause?: unknown) => FramewiseError): RecurrentHead {
  const inputDim = model.inputs[0]?.shape.at(-1);
  if (inputDim !== meta.embeddingDim) {
    throw invalid(`the model takes ${inputDim}-d embeddings but ${BUNDLE_FILES.meta} says embeddingDim ${meta.embeddingDim} (${meta.embedderId})`);
  }
  const weights: NamedWeight[] = [];
  for (const layer of model.layers) {
    const names = layer.name.startsWith('rnn_') ? ['kernel', 'recurrent_kernel', 'bias'] : ['kernel', 'bias'];
    const values = layer.getWeights();
    if (values.length !== names.length) throw invalid(`layer ${layer.name} has ${values.length} weights, expected ${names.length}`);
    values.forEach((v, k) => weights.push({ name: `${layer.name}/${names[k]}`, shape: [...v.shape], values: v.dataSync() as Float32Array }));
  }
  try {
    return headFromSpec(specFromMeta(meta), weights);
  } catch (err) {
    if (err instanceof FramewiseError) throw invalid(`${err.message} (the model does not match ${BUNDLE_FILES.meta})`, err);
    throw err;
  }
}

/** Checks a parsed framewise.json and fills the fields older bundles lack. */
export function parseMeta(raw: unknown, invalid: (what: string) => FramewiseError): BundleMeta {
  if (typeof raw !== 'object' || raw === null) throw invalid(`${BUNDLE_FILES.meta} is not a JSON object`);
  const m = raw as Partial<BundleMeta>;
  if (typeof m.formatVersion !== 'number' || m.formatVersion < OLDEST_READABLE_VERSION || m.formatVersion > BUNDLE_FORMAT_VERSION) {
    throw invalid(`${BUNDLE_FILES.meta} has format version ${m.formatVersion}, this framewise reads ${OLDEST_READABLE_VERSION} to ${BUNDLE_FORMAT_VERSION}`);
  }
  const need = (ok: boolean, what: string) => {
    if (!ok) throw invalid(`${BUNDLE_FILES.meta}: ${what}`);
  };
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  need(Array.isArray(m.classes) && m.classes.length >= 2 && m.classes.every((c) => typeof c === 'string'), 'classes must be >= 2 strings');
  need(
    m.classes!.every((c) => c.length > 0) && new Set(m.classes).size === m.classes!.length,
    `class names must be non-empty and distinct, got ${JSON.stringify(m.classes)}`,
  );
  need(typeof m.embedderId === 'string', 'embedderId must be a string');
  // Refused here, not at the first input: a bundle that cannot run must not look loaded.
  need(EMBEDDER_IDS.includes(m.embedderId!), `unknown embedderId ${JSON.stringify(m.embedderId)} (known: ${EMBEDDER_IDS.join(', ')})`);
  need(m.crop === undefined || m.crop === 'center' || m.crop === 'pad', `crop must be "center" or "pad", got ${JSON.stringify(m.crop)}`);
  need(m.features === undefined || FEATURE_SETS.includes(m.features), `features must be ${FEATURE_SETS.join(' or ')}, got ${JSON.stringify(m.features)}`);
  need(posInt(m.embeddingDim), 'embeddingDim must be a positive integer');
  need(m.cell === 'lstm' || m.cell === 'gru' || m.cell === 'none', 'cell must be lstm, gru or none');
  need(posInt(m.layers) && posInt(m.hidden), 'layers and hidden must be positive integers');
  need(Number.isInteger(m.projection) && m.projection! >= 0, 'projection must be an integer >= 0');
  need(m.fps === null || (typeof m.fps === 'number' && m.fps > 0), 'fps must be a positive number or null');
  need(m.inputNorm === undefined || (typeof m.inputNorm === 'number' && m.inputNorm >= 0 && m.inputNorm <= 1), 'inputNorm must be in [0, 1]');
  need(
    m.inputNormDims === undefined || (posInt(m.inputNormDims) && m.inputNormDims <= m.embeddingDim!),
    'inputNormDims must be an integer in [1, embeddingDim]',
  );
  need(
    m.motionGain === undefined || (typeof m.motionGain === 'number' && m.motionGain > 0 && Number.isFinite(m.motionGain) && m.inputNormDims !== undefined),
    'motionGain must be a positive number, with inputNormDims',
  );
  need(
    m.unknownFar === undefined ||
      (Array.isArray(m.unknownFar.beyond) &&
        m.unknownFar.beyond.length === m.classes!.length &&
        Array.isArray(m.unknownFar.centroids) &&
        m.unknownFar.centroids.length === m.classes!.length &&
        m.unknownFar.centroids.every((c) => Array.isArray(c) && c.length === appearanceDim(m.embeddingDim!, m.features ?? 'appearance'))),
    "unknownFar must have one distance (beyond) and one centroid per class, of the appearance embedding's length",
  );
  need(m.unknownBelow === undefined || (typeof m.unknownBelow === 'number' && m.unknownBelow >= 0 && m.unknownBelow <= 1), 'unknownBelow must be in [0, 1]');
  return { dropout: 0, seed: 0, crop: 'center', inputNorm: 0, features: 'appearance', ...m } as BundleMeta;
}
