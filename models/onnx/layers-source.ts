// The trainable layers model an ONNX export is made from: `<models-dir>/<id>/layers/` (model.json +
// weight shards). Pure tfjs has no file loader in Node, so the files are read here and handed to
// tf.loadLayersModel through a one-shot IOHandler. The hash covers topology and every weight byte,
// so a cached export can tell whether it still describes these weights.
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../pipeline/errors.ts';
import { modelsDirFromEnv } from '../weights.ts';

/** The models folder: explicit, else env FRAMEWISE_MODELS. The export needs the trainable layers
 * model, which only a local folder provides (the download fetches graph models). */
export function resolveModelsDir(modelsDir?: string): string {
  const dir = modelsDir ?? modelsDirFromEnv();
  if (!dir) {
    throw new FramewiseError(ErrorCodes.MODEL_NOT_FOUND, 'the ONNX export reads <models-dir>/<id>/layers/: set --models-dir or FRAMEWISE_MODELS');
  }
  return dir;
}

export function layersDir(id: string, modelsDir?: string): string {
  return join(resolveModelsDir(modelsDir), id, 'layers');
}

export interface LayersArtifacts {
  id: string;
  dir: string;
  /** sha256 (hex) over model.json and the weight shards in manifest order. */
  sourceHash: string;
  artifacts: tf.io.ModelArtifacts;
}

/** Reads model.json and its shards; throws MODEL_NOT_FOUND / MODEL_INVALID with the path. */
export async function readLayersArtifacts(id: string, modelsDir?: string): Promise<LayersArtifacts> {
  const dir = layersDir(id, modelsDir);
  const jsonPath = join(dir, 'model.json');
  let jsonText: Buffer;
  try {
    jsonText = await readFile(jsonPath);
  } catch (err) {
    throw new FramewiseError(
      ErrorCodes.MODEL_NOT_FOUND,
      `no layers model for "${id}" at ${jsonPath} (set --models-dir or FRAMEWISE_MODELS)`,
      { cause: err },
    );
  }
  const hash = createHash('sha256').update(jsonText);
  try {
    const json = JSON.parse(jsonText.toString('utf8')) as tf.io.ModelJSON;
    if (!json.modelTopology || !Array.isArray(json.weightsManifest)) throw new Error('model.json lacks modelTopology or weightsManifest');
    const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
      const buffers: ArrayBuffer[] = [];
      const specs: tf.io.WeightsManifestEntry[] = [];
      for (const group of manifest) {
        for (const p of group.paths) {
          const bytes = await readFile(join(dir, p));
          hash.update(bytes);
          buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
        }
        specs.push(...group.weights);
      }
      return [specs, tf.io.concatenateArrayBuffers(buffers)];
    });
    return { id, dir, sourceHash: hash.digest('hex'), artifacts };
  } catch (err) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `layers model for "${id}" in ${dir} is unreadable: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Loads the layers model on the active tfjs backend; the caller disposes it. */
export async function loadLayersModel(source: LayersArtifacts): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(source.artifacts));
  } catch (err) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `layers model for "${source.id}" does not load in tfjs: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
