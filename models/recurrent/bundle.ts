// Model bundle: a folder with
//   model.json + weights.bin  a stock tf.layers model (tf.loadLayersModel works, e.g. in a browser):
//                             [projection dense] -> lstm|gru (returnSequences) x N -> dense softmax
//   framewise.json            what the weights mean: classes, embedder, fps, crop, head shape,
//                             training config, dataset summary, evaluation metrics.
// The exported layers model uses tf.layers' own LSTM/GRU cells; cells.ts follows their gate order
// and GRU variant, so the weights are shared unchanged (test/models/recurrent/bundle.test.ts checks
// that the stock-loaded model and the head agree). Loading always goes through tf.loadLayersModel,
// so a bundle that loads here also loads in a browser.
//
// Pure tfjs has no file IO in Node: files are written and read here with node:fs and handed to
// tfjs through tf.io.withSaveHandler / tf.io.fromMemory.
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { CropPolicy } from '../../core/types.ts';
import { EMBEDDER_IDS } from '../registry.ts';
import type { UnknownFarMeta } from '../unknown-rule.ts';
import { loadFolderArtifacts } from '../weights.ts';
import { createHead, type HeadSpec, type NamedWeight, type RecurrentHead } from './head.ts';

// Version 2 added `unknownBelow`; version 1 bundles (without it) still load and never say unknown.
export const BUNDLE_FORMAT_VERSION = 2;
/** The oldest format version this framewise still reads. */
const OLDEST_READABLE_VERSION = 1;
export const BUNDLE_FILES = { model: 'model.json', weights: 'weights.bin', meta: 'framewise.json' } as const;

/** What the caller describes when saving; the head's own shape is filled in by saveBundle. */
export interface BundleInfo {
  /** Class labels in softmax order (length = head classes). */
  classes: string[];
  /** Embedder id, e.g. 'mobilenet_v2_1.0_224'. */
  embedderId: string;
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
  /** Embedding length the head expects (= the embedder's output length). */
  embeddingDim: number;
  createdAt: string;
}

/** Builds the equivalent stock tf.layers model, carrying copies of the head's weights. */
export function toLayersModel(head: RecurrentHead): tf.Sequential {
  const s = head.spec;
  const weights = new Map(head.getWeights().map((w) => [w.name, tf.tensor(w.values, w.shape)]));
  const take = (...names: string[]) => names.map((n) => weights.get(n)!);
  const model = tf.sequential();
  // Variable-length sequences: [batch, time, dim] with time left open.
  const inputShape = [null, s.inputDim];
  let first = true;
  const add = (layer: tf.layers.Layer) => {
    model.add(layer);
    first = false;
  };
  // Zero initialisers: the weights are set right after, and they are serialised into model.json,
  // so loaders (ours, a browser's) skip tf.layers' slow orthogonal init (a QR per load).
  const firstArgs = () => ({
    kernelInitializer: 'zeros' as const,
    biasInitializer: 'zeros' as const,
    ...(first ? { inputShape } : {}),
  });
  try {
    if (s.projection > 0) add(tf.layers.dense({ units: s.projection, name: 'projection', ...firstArgs() }));
    for (let l = 0; l < s.layers; l++) {
      if (s.cell === 'none') {
        add(tf.layers.dense({ units: s.hidden, activation: 'tanh', name: `frame_${l}`, ...firstArgs() }));
        continue;
      }
      const args = {
        units: s.hidden,
        returnSequences: true,
        // tf.layers defaults to hardSigmoid; our cells (and Keras 2+) use the logistic sigmoid.
        recurrentActivation: 'sigmoid' as const,
        recurrentInitializer: 'zeros' as const,
        name: `rnn_${l}`,
        ...firstArgs(),
      };
      add(s.cell === 'lstm' ? tf.layers.lstm(args) : tf.layers.gru(args));
    }
    add(tf.layers.dense({ units: s.classes, activation: 'softmax', name: 'readout', ...firstArgs() }));
    for (const layer of model.layers) {
      const n = layer.name;
      layer.setWeights(
        n.startsWith('rnn_') ? take(`${n}/kernel`, `${n}/recurrent_kernel`, `${n}/bias`) : take(`${n}/kernel`, `${n}/bias`),
      );
    }
    return model;
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}

export async function saveBundle(dir: string, head: RecurrentHead, info: BundleInfo): Promise<BundleMeta> {
  const s = head.spec;
  if (info.classes.length !== s.classes) {
    throw new FramewiseError(
      ErrorCodes.USAGE,
      `saveBundle: ${info.classes.length} class labels for a head with ${s.classes} classes`,
    );
  }
  const { inputDim, classes: _count, ...architecture } = s;
  const meta: BundleMeta = {
    formatVersion: BUNDLE_FORMAT_VERSION,
    ...info,
    embeddingDim: inputDim,
    ...architecture,
    createdAt: new Date().toISOString(),
  };
  const model = toLayersModel(head);
  try {
    await mkdir(dir, { recursive: true });
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const data = artifacts.weightData;
        const bytes = data === undefined ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(data);
        const modelJson: tf.io.ModelJSON = {
          modelTopology: artifacts.modelTopology as object,
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: 'framewise',
          weightsManifest: [{ paths: [BUNDLE_FILES.weights], weights: artifacts.weightSpecs ?? [] }],
        };
        await writeFile(join(dir, BUNDLE_FILES.weights), new Uint8Array(bytes));
        await writeFile(join(dir, BUNDLE_FILES.model), JSON.stringify(modelJson));
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
    await writeFile(join(dir, BUNDLE_FILES.meta), JSON.stringify(meta, null, 2) + '\n');
  } catch (err) {
    if (err instanceof FramewiseError) throw err;
    throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot write model bundle to ${dir}: ${message(err)}`, { cause: err });
  } finally {
    model.dispose();
  }
  return meta;
}

export interface LoadedBundle {
  head: RecurrentHead;
  meta: BundleMeta;
}

/** Reads and checks a bundle; any problem is E_MODEL_INVALID naming the file and what is wrong. */
export async function loadBundle(dir: string): Promise<LoadedBundle> {
  const invalid = (what: string, cause?: unknown) =>
    new FramewiseError(ErrorCodes.MODEL_INVALID, `model bundle ${dir}: ${what}`, { cause });
  const meta = parseMeta(await readJson(join(dir, BUNDLE_FILES.meta), invalid), invalid);
  let model: tf.LayersModel;
  try {
    let artifacts: tf.io.ModelArtifacts;
    try {
      artifacts = await loadFolderArtifacts(dir, { kind: 'layers-model' });
    } catch (err) {
      // Inside a bundle every problem, a missing model.json too, is a broken bundle.
      throw invalid(message(err), err);
    }
    model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (err) {
    if (err instanceof FramewiseError) throw err;
    throw invalid(`tf.loadLayersModel failed: ${message(err)}`, err);
  }
  try {
    const inputDim = model.inputs[0]?.shape.at(-1);
    if (inputDim !== meta.embeddingDim) {
      throw invalid(
        `the model takes ${inputDim}-d embeddings but ${BUNDLE_FILES.meta} says embeddingDim ${meta.embeddingDim} (${meta.embedderId})`,
      );
    }
    const spec: HeadSpec = {
      inputDim: meta.embeddingDim,
      classes: meta.classes.length,
      cell: meta.cell,
      layers: meta.layers,
      hidden: meta.hidden,
      projection: meta.projection,
      dropout: meta.dropout,
      seed: meta.seed,
      inputNorm: meta.inputNorm,
    };
    const weights: NamedWeight[] = [];
    for (const layer of model.layers) {
      const names = layer.name.startsWith('rnn_') ? ['kernel', 'recurrent_kernel', 'bias'] : ['kernel', 'bias'];
      const values = layer.getWeights();
      if (values.length !== names.length) throw invalid(`layer ${layer.name} has ${values.length} weights, expected ${names.length}`);
      values.forEach((v, k) =>
        weights.push({ name: `${layer.name}/${names[k]}`, shape: [...v.shape], values: v.dataSync() as Float32Array }),
      );
    }
    try {
      return { head: createHead(spec, weights), meta };
    } catch (err) {
      if (err instanceof FramewiseError) throw invalid(`${err.message} (the model does not match ${BUNDLE_FILES.meta})`, err);
      throw err;
    }
  } finally {
    model.dispose();
  }
}

async function readJson(path: string, invalid: (what: string, cause?: unknown) => FramewiseError): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw invalid(`cannot read ${path} (${message(err)})`, err);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`${path} is not valid JSON (${message(err)})`, err);
  }
}

function parseMeta(raw: unknown, invalid: (what: string) => FramewiseError): BundleMeta {
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
  need(m.classes!.every((c) => c.length > 0) && new Set(m.classes).size === m.classes!.length, `class names must be non-empty and distinct, got ${JSON.stringify(m.classes)}`);
  need(typeof m.embedderId === 'string', 'embedderId must be a string');
  // Refused here, not at the first input: a bundle that cannot run must not look loaded.
  need(EMBEDDER_IDS.includes(m.embedderId!), `unknown embedderId ${JSON.stringify(m.embedderId)} (known: ${EMBEDDER_IDS.join(', ')})`);
  need(m.crop === undefined || m.crop === 'center' || m.crop === 'pad', `crop must be "center" or "pad", got ${JSON.stringify(m.crop)}`);
  need(posInt(m.embeddingDim), 'embeddingDim must be a positive integer');
  need(m.cell === 'lstm' || m.cell === 'gru' || m.cell === 'none', 'cell must be lstm, gru or none');
  need(posInt(m.layers) && posInt(m.hidden), 'layers and hidden must be positive integers');
  need(Number.isInteger(m.projection) && m.projection! >= 0, 'projection must be an integer >= 0');
  need(m.fps === null || (typeof m.fps === 'number' && m.fps > 0), 'fps must be a positive number or null');
  need(m.inputNorm === undefined || (typeof m.inputNorm === 'number' && m.inputNorm >= 0 && m.inputNorm <= 1), 'inputNorm must be in [0, 1]');
  need(
    m.unknownFar === undefined ||
      (Array.isArray(m.unknownFar.beyond) && m.unknownFar.beyond.length === m.classes!.length && Array.isArray(m.unknownFar.centroids) && m.unknownFar.centroids.length === m.classes!.length && m.unknownFar.centroids.every((c) => Array.isArray(c) && c.length === m.embeddingDim)),
    'unknownFar must have one distance (beyond) and one centroid of embeddingDim numbers per class',
  );
  need(m.unknownBelow === undefined || (typeof m.unknownBelow === 'number' && m.unknownBelow >= 0 && m.unknownBelow <= 1), 'unknownBelow must be in [0, 1]');
  return { dropout: 0, seed: 0, crop: 'center', inputNorm: 0, ...m } as BundleMeta;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
