// The trainable layers model an ONNX export is made from: `<models-dir>/<id>/layers/` (model.json +
// weight shards), read by the project's one folder reader (models/weights.ts) and handed to
// tf.loadLayersModel from memory. The hash covers topology and every weight byte,
// so a cached export can tell whether it still describes these weights.
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { loadFolderArtifacts } from '../weights.ts';

/** The models folder, which must be given: the export needs the trainable layers model, which
 * only a local folder provides (the download fetches graph models). */
export function resolveModelsDir(modelsDir?: string): string {
  const dir = modelsDir;
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
  const hash = createHash('sha256');
  try {
    const artifacts = await loadFolderArtifacts(dir, { kind: 'layers-model', onBytes: (b) => hash.update(b) });
    return { id, dir, sourceHash: hash.digest('hex'), artifacts };
  } catch (err) {
    if (err instanceof FramewiseError && err.code === ErrorCodes.MODEL_NOT_FOUND) {
      throw new FramewiseError(ErrorCodes.MODEL_NOT_FOUND, `no layers model for "${id}" at ${join(dir, 'model.json')} (set --models-dir or FRAMEWISE_MODELS)`, {
        cause: err,
      });
    }
    throw err;
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
