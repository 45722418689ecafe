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
import { loadFolderArtifacts } from '../weights.ts';
import type { RecurrentHead } from './head.ts';
import { BUNDLE_FILES, BUNDLE_FORMAT_VERSION, headFromLayersModel, parseMeta, type BundleInfo, type BundleMeta } from './bundle-meta.ts';

export { BUNDLE_FILES, BUNDLE_FORMAT_VERSION, type BundleInfo, type BundleMeta } from './bundle-meta.ts';

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
      layer.setWeights(n.startsWith('rnn_') ? take(`${n}/kernel`, `${n}/recurrent_kernel`, `${n}/bias`) : take(`${n}/kernel`, `${n}/bias`));
    }
    return model;
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}

export async function saveBundle(dir: string, head: RecurrentHead, info: BundleInfo): Promise<BundleMeta> {
  const s = head.spec;
  if (info.classes.length !== s.classes) {
    throw new FramewiseError(ErrorCodes.USAGE, `saveBundle: ${info.classes.length} class labels for a head with ${s.classes} classes`);
  }
  const { inputDim, classes: _count, ...architecture } = s;
  const meta: BundleMeta = {
    formatVersion: BUNDLE_FORMAT_VERSION,
    ...info,
    features: info.features ?? 'appearance',
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
  const invalid = (what: string, cause?: unknown) => new FramewiseError(ErrorCodes.MODEL_INVALID, `model bundle ${dir}: ${what}`, { cause });
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
    return { head: headFromLayersModel(model, meta, invalid), meta };
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

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
