// The MobileNet embedder: @tensorflow-models/mobilenet run on local (or once-downloaded) weights.
// Frames in, Float32Array embeddings out; tensors live only inside this module.
import * as tf from '@tensorflow/tfjs';
import * as mobilenet from '@tensorflow-models/mobilenet';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError, integerIn } from '../core/errors.ts';
import { ensureBackend, parseBackendRequest, type BackendRequest } from './backend.ts';
import { embedderInfo, type EmbedderInfo } from './registry.ts';
import { folderIOHandler, resolveWeights, type WeightsLocation } from './weights.ts';

/** A packed rgb24 image, row-major, width * height * 3 bytes. */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

export interface EmbedderConfig {
  /** Embedder id from models/registry.ts. Default DEFAULTS.embedder (mobilenet_v2_1.0_224). */
  id?: string;
  /** Folder holding <id>/model.json. Without it, the cache is searched, then the download. */
  modelsDir?: string;
  /** Cache root for downloaded weights (<cacheDir>/models/<id>). Default DEFAULTS.cacheDir. */
  cacheDir?: string;
  /**
   * tfjs backend; the first model-facing call in a process fixes it (tfjs backends are global).
   * Default 'auto'.
   */
  backend?: BackendRequest;
  /** Fetch the official weights when no local copy exists. Default true. */
  allowDownload?: boolean;
  /** Most frames per model call, an integer in [1, 1024]. Default DEFAULTS.embedBatch. */
  batchSize?: number;
  /** Human-readable progress (download, load); default silent. */
  onProgress?: (msg: string) => void;
}

export interface Embedder {
  readonly id: string;
  readonly dim: number;
  readonly inputSize: number;
  /** The numbers it computes with; absent means fp32 (models/precision.ts). */
  readonly precision?: 'fp32' | 'int8';
  /** rgb24 frames of inputSize x inputSize; returns one embedding per frame, in order. */
  embed(frames: readonly RgbImage[]): Promise<Float32Array[]>;
  /** ImageNet top-k (sanity checks), most probable first. */
  classify(frame: RgbImage, topK?: number): Promise<{ className: string; probability: number }[]>;
  /** Frees the model's weights; later calls fail with E_USAGE. Idempotent. */
  dispose(): void;
}

interface ResolvedConfig {
  readonly id: string;
  readonly modelsDir: string | undefined;
  readonly cacheDir: string;
  readonly backend: BackendRequest | undefined;
  readonly allowDownload: boolean;
  readonly batchSize: number;
  readonly onProgress: (msg: string) => void;
}

/** Copies the caller's config, fills defaults and range-checks it; never mutates the input. */
export function resolveEmbedderConfig(config: EmbedderConfig = {}): ResolvedConfig {
  const id = config.id ?? DEFAULTS.embedder;
  if (typeof id !== 'string') throw usage(`embedder id must be a string, got ${typeof id}`);
  embedderInfo(id); // unknown ids fail here, before any backend or file work
  const batchSize = integerIn('batchSize', config.batchSize ?? DEFAULTS.embedBatch, 1, 1024);
  const backend = config.backend === undefined ? undefined : parseBackendRequest(config.backend);
  if (config.onProgress !== undefined && typeof config.onProgress !== 'function') throw usage('onProgress must be a function');
  return Object.freeze({
    id,
    modelsDir: config.modelsDir,
    cacheDir: config.cacheDir ?? DEFAULTS.cacheDir,
    backend,
    allowDownload: config.allowDownload ?? true,
    batchSize,
    onProgress: config.onProgress ?? (() => {}),
  });
}

/** Loads, warms up (one embed on zeros, which also checks the embedding size) and returns an embedder. */
export async function loadEmbedder(config: EmbedderConfig = {}): Promise<Embedder> {
  const c = resolveEmbedderConfig(config);
  const info = embedderInfo(c.id);
  await (c.backend === undefined ? ensureBackend() : ensureBackend(c.backend));
  const weights = await resolveWeights(info.id, {
    modelsDir: c.modelsDir,
    cacheDir: c.cacheDir,
    allowDownload: c.allowDownload,
    onProgress: c.onProgress,
  });
  let net: mobilenet.MobileNet;
  try {
    net = await mobilenet.load({
      version: info.version,
      alpha: info.alpha as mobilenet.MobileNetAlpha,
      modelUrl: folderIOHandler(weights.dir),
      ...(weights.inputRange ? { inputRange: weights.inputRange } : {}),
    });
  } catch (err) {
    if (err instanceof FramewiseError) throw err;
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `cannot load ${info.id} from ${weights.dir}: ${(err as Error).message}`, { cause: err });
  }
  const embedder = new MobileNetEmbedder(info, net, c.batchSize, weights);
  try {
    const [e] = await embedder.embed([{ rgb: new Uint8Array(info.inputSize * info.inputSize * 3), width: info.inputSize, height: info.inputSize }]);
    if (!e.every(Number.isFinite)) throw new Error('non-finite embedding for a black frame');
  } catch (err) {
    embedder.dispose();
    if (err instanceof FramewiseError) throw err;
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `${weights.dir} does not work as ${info.id}: ${(err as Error).message}`, { cause: err });
  }
  c.onProgress(`embedder ${info.id} (${info.dim}-d) loaded from ${weights.dir} [${weights.source}]`);
  return embedder;
}

class MobileNetEmbedder implements Embedder {
  readonly id: string;
  readonly dim: number;
  readonly inputSize: number;
  /** Where the weights were found; for messages. */
  readonly weights: WeightsLocation;
  private net: mobilenet.MobileNet | undefined;

  constructor(
    info: EmbedderInfo,
    net: mobilenet.MobileNet,
    private readonly batchSize: number,
    weights: WeightsLocation,
  ) {
    this.id = info.id;
    this.dim = info.dim;
    this.inputSize = info.inputSize;
    this.weights = weights;
    this.net = net;
  }

  async embed(frames: readonly RgbImage[]): Promise<Float32Array[]> {
    const net = this.live();
    frames.forEach((f, i) => this.check(f, i));
    const out: Float32Array[] = [];
    for (let start = 0; start < frames.length; start += this.batchSize) {
      out.push(...(await this.embedBatch(net, frames.slice(start, start + this.batchSize))));
    }
    return out;
  }

  async classify(frame: RgbImage, topK = 3): Promise<{ className: string; probability: number }[]> {
    const net = this.live();
    this.check(frame, 0);
    integerIn('topK', topK, 1, 1000);
    const s = this.inputSize;
    const img = tf.tensor3d(frame.rgb, [s, s, 3], 'int32');
    try {
      return await net.classify(img, topK);
    } finally {
      img.dispose();
    }
  }

  dispose(): void {
    // The package's MobileNet interface has no dispose(); its implementation keeps the GraphModel in `model`.
    const model = (this.net as { model?: { dispose(): void } } | undefined)?.model;
    this.net = undefined;
    model?.dispose();
  }

  private async embedBatch(net: mobilenet.MobileNet, batch: readonly RgbImage[]): Promise<Float32Array[]> {
    const s = this.inputSize;
    const per = s * s * 3;
    let pixels: Uint8Array;
    if (batch.length === 1) {
      pixels = batch[0].rgb;
    } else {
      pixels = new Uint8Array(batch.length * per);
      batch.forEach((f, i) => pixels.set(f.rgb, i * per));
    }
    // 0..255 values: with a modelUrl the package scales to the model's input range itself.
    const input = tf.tensor4d(pixels, [batch.length, s, s, 3], 'int32');
    let emb: tf.Tensor | undefined;
    try {
      emb = net.infer(input, true);
      if (emb.shape.length !== 2 || emb.shape[0] !== batch.length || emb.shape[1] !== this.dim) {
        throw new FramewiseError(
          ErrorCodes.MODEL_INVALID,
          `${this.weights.dir} gives embeddings of shape [${emb.shape}], ${this.id} needs [${batch.length},${this.dim}]`,
        );
      }
      const data = (await emb.data()) as Float32Array;
      // Own buffers per frame: a view into the batch would pin it and cannot be transferred alone.
      return batch.map((_, i) => data.slice(i * this.dim, (i + 1) * this.dim));
    } finally {
      input.dispose();
      emb?.dispose();
    }
  }

  private live(): mobilenet.MobileNet {
    if (!this.net) throw usage(`embedder ${this.id} was disposed`);
    return this.net;
  }

  private check(f: RgbImage, i: number): void {
    const s = this.inputSize;
    if (!f || !(f.rgb instanceof Uint8Array) || f.width !== s || f.height !== s || f.rgb.length !== s * s * 3) {
      throw usage(
        `frame ${i} is ${f?.width}x${f?.height} with ${f?.rgb?.length} bytes; ${this.id} needs ${s}x${s} rgb24 ` +
          `(${s * s * 3} bytes): decode with size ${s}`,
      );
    }
  }
}

function usage(msg: string): FramewiseError {
  return new FramewiseError(ErrorCodes.USAGE, msg);
}
