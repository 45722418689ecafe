// The embedders framewise knows: MobileNet variants of @tensorflow-models/mobilenet, named by id.
// The id is what bundles, embedding files and the CLI record, so an id never changes meaning.
import { ErrorCodes, FramewiseError } from '../core/errors.ts';

export interface EmbedderInfo {
  id: string;
  /** `version` argument of mobilenet.load(). */
  version: 1 | 2;
  /** `alpha` (width multiplier) argument of mobilenet.load(). */
  alpha: number;
  /** Square input side in pixels; frames must be decoded to inputSize x inputSize rgb24. */
  inputSize: number;
  /** Embedding length (the global average pool before the classifier). */
  dim: number;
  /**
   * The TF-Hub model the package itself loads for (version, alpha) (its MODEL_INFO table); fetched
   * as `<officialUrl>/model.json?tfjs-format=file`. These hub models expect input in [0, 1].
   */
  officialUrl: string;
  /** Multiply-adds per frame up to the embedding, as framewise's ONNX exporter counts them. */
  multiplyAdds: number;
}

const entry = (id: string, version: 1 | 2, alpha: number, dim: number, hubName: string, hubVersion: number, multiplyAdds: number): EmbedderInfo =>
  Object.freeze({
    id,
    version,
    alpha,
    inputSize: 224,
    dim,
    officialUrl: `https://tfhub.dev/google/imagenet/${hubName}/classification/${hubVersion}`,
    multiplyAdds,
  });

export const EMBEDDERS: Readonly<Record<string, EmbedderInfo>> = Object.freeze({
  'mobilenet_v2_1.0_224': entry('mobilenet_v2_1.0_224', 2, 1.0, 1280, 'mobilenet_v2_100_224', 2, 299.5e6),
  'mobilenet_v1_1.0_224': entry('mobilenet_v1_1.0_224', 1, 1.0, 1024, 'mobilenet_v1_100_224', 1, 567.7e6),
  'mobilenet_v1_0.25_224': entry('mobilenet_v1_0.25_224', 1, 0.25, 256, 'mobilenet_v1_025_224', 1, 40.8e6),
});

export const EMBEDDER_IDS: readonly string[] = Object.freeze(Object.keys(EMBEDDERS));

/** Looks an embedder up by id; an unknown id is a usage error that lists the known ones. */
export function embedderInfo(id: string): EmbedderInfo {
  const info = Object.hasOwn(EMBEDDERS, id) ? EMBEDDERS[id] : undefined;
  if (!info) {
    throw new FramewiseError(ErrorCodes.USAGE, `unknown embedder "${id}": use one of ${EMBEDDER_IDS.join(', ')}`);
  }
  return info;
}
