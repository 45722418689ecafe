// The native embedder: framewise's own, verified ONNX export of the MobileNet weights, run by
// onnxruntime-node on the CPU. Same interface and same pixels in as the tfjs embedder.
//
// Latency note: onnxruntime-node's `run()` returns a promise but only defers the work with
// setImmediate and then runs the whole graph synchronously on the calling thread (measured: a
// 132 ms batch-8 run is one 132 ms event-loop stall). Call it from a worker thread where the event
// loop must stay responsive (the server); for offline labeling the stall costs nothing.
import * as ort from 'onnxruntime-node';
import { IMAGENET_CLASSES } from '@tensorflow-models/mobilenet/dist/imagenet_classes.js';
import { availableParallelism } from 'node:os';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError, integerIn } from '../../core/errors.ts';
import { ensureBackend, type BackendRequest } from '../backend.ts';
import type { Embedder, RgbImage } from '../embedder.ts';
import { embedderInfo } from '../registry.ts';
import { ensureOnnx, type ReadyOnnx } from './cache.ts';
import { EMBEDDING_NAME, INPUT_NAME, LOGITS_NAME } from './export.ts';
import { openSession, packFrames } from './verify.ts';

export interface OnnxEmbedderConfig {
  /** Embedder id from models/registry.ts. Default DEFAULTS.embedder. */
  id?: string;
  /** Folder holding <id>/layers/ (the source of the export); needed only when the file must be exported. */
  modelsDir?: string;
  /** tfjs backend for the reference the export is verified against. Default 'auto'. */
  backend?: BackendRequest;
  /** Cache root; the export lives in <cacheDir>/onnx/<id>.onnx. Default DEFAULTS.cacheDir. */
  cacheDir?: string;
  /** An ONNX file to run instead of the cached export; verified against tfjs before use. */
  file?: string;
  /** Photos the export is verified on. Default <modelsDir>/../data/images (synthetic frames when absent). */
  imagesDir?: string;
  /** ONNX Runtime intra-op threads, an integer in [1, 64]. Default: the number of cores. */
  threads?: number;
  /**
   * Let idle ONNX Runtime threads busy-wait between ops. A few % faster on an otherwise idle machine,
   * about 2x slower when decode, the head or other processes share the cores. Default false.
   */
  spin?: boolean;
  /** Most frames per session run, an integer in [1, 1024]. Default DEFAULTS.embedBatch. */
  batchSize?: number;
  /** Human-readable progress (export, verification); default silent. */
  onProgress?: (msg: string) => void;
}

export interface OnnxEmbedder extends Embedder {
  readonly engine: 'onnx';
  readonly threads: number;
  /** The ONNX file in use and how it came to be trusted. */
  readonly file: string;
  readonly provenance: ReadyOnnx['how'];
  /** Multiply-adds per frame of the embedding (for MACs/s in benchmarks). */
  readonly macsPerFrame: number;
}

function usage(msg: string): FramewiseError {
  return new FramewiseError(ErrorCodes.USAGE, msg);
}

/**
 * The verified ONNX file for `config.id`: exported and verified on first use, else the cached
 * export its sidecar vouches for. Run it once before starting several workers on the same file,
 * so they do not all export it at the same time.
 */
export function prepareOnnx(config: OnnxEmbedderConfig): Promise<ReadyOnnx> {
  // The tfjs reference (export and verification) needs the process's tfjs backend; a file its
  // sidecar vouches for is opened without touching tfjs at all.
  return ensureOnnx({
    id: config.id ?? DEFAULTS.embedder,
    modelsDir: config.modelsDir,
    cacheDir: config.cacheDir,
    file: config.file,
    imagesDir: config.imagesDir,
    log: config.onProgress ?? (() => {}),
    beforeTfjs: () => ensureBackend(config.backend).then(() => {}),
  });
}

/** Exports (first use), verifies and opens the ONNX embedder; warmed up with one black frame. */
export async function loadOnnxEmbedder(config: OnnxEmbedderConfig = {}): Promise<OnnxEmbedder> {
  const id = config.id ?? DEFAULTS.embedder;
  const info = embedderInfo(id);
  const threads = integerIn('threads', config.threads ?? availableParallelism(), 1, 64);
  const batchSize = integerIn('batchSize', config.batchSize ?? DEFAULTS.embedBatch, 1, 1024);
  const log = config.onProgress ?? (() => {});
  const ready = await prepareOnnx(config);
  if (ready.sidecar.dim && ready.sidecar.dim !== info.dim) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `ONNX file ${ready.path} gives ${ready.sidecar.dim}-d embeddings, ${id} has ${info.dim}`);
  }
  const session = await openSession(ready.bytes, threads, `ONNX file ${ready.path}`, config.spin ?? false);
  const embedder = new OrtEmbedder(id, info.dim, info.inputSize, threads, batchSize, session, ready);
  try {
    const [e] = await embedder.embed([{ rgb: new Uint8Array(info.inputSize * info.inputSize * 3), width: info.inputSize, height: info.inputSize }]);
    if (e!.length !== info.dim || !e!.every(Number.isFinite)) throw new Error('no finite embedding of the right size for a black frame');
  } catch (err) {
    embedder.dispose();
    if (err instanceof FramewiseError) throw err;
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `ONNX file ${ready.path} does not work as ${id}: ${(err as Error).message}`, { cause: err });
  }
  log(`embedder ${id} (${info.dim}-d) on onnxruntime-node ${ort.env.versions.node ?? ''}, ${threads} thread(s), file ${ready.path} [${ready.how}]`);
  return embedder;
}

class OrtEmbedder implements OnnxEmbedder {
  readonly engine = 'onnx' as const;
  readonly file: string;
  readonly provenance: ReadyOnnx['how'];
  readonly macsPerFrame: number;
  private session: ort.InferenceSession | undefined;
  /**
   * The input batch, reused run after run: a fresh Float32Array (4.8 MB for 8 frames) was
   * mapped, page-faulted and collected each time. A run that overlaps another (concurrent embed() calls
   * on this thread) packs into a fresh array instead.
   */
  private pixels: Float32Array | undefined;
  private pixelsInUse = false;

  constructor(
    readonly id: string,
    readonly dim: number,
    readonly inputSize: number,
    readonly threads: number,
    private readonly batchSize: number,
    session: ort.InferenceSession,
    ready: ReadyOnnx,
  ) {
    this.session = session;
    this.file = ready.path;
    this.provenance = ready.how;
    this.macsPerFrame = ready.sidecar.macs.embedding;
  }

  async embed(frames: readonly RgbImage[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let start = 0; start < frames.length; start += this.batchSize) {
      const batch = frames.slice(start, start + this.batchSize);
      const data = await this.run(batch, EMBEDDING_NAME);
      // Own buffers per frame: a view into the batch would pin it and cannot be transferred alone.
      for (let i = 0; i < batch.length; i++) out.push(data.slice(i * this.dim, (i + 1) * this.dim));
    }
    return out;
  }

  /**
   * ImageNet top-k from the export's logits output, scored like @tensorflow-models/mobilenet's
   * classify(): background logit (index 0 of a 1001-way head) dropped, softmax over the 1000 classes.
   */
  async classify(frame: RgbImage, topK = 3): Promise<{ className: string; probability: number }[]> {
    integerIn('topK', topK, 1, 1000);
    const all = await this.run([frame], LOGITS_NAME);
    const logits = all.length === 1001 ? all.subarray(1) : all;
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    const exp = Float64Array.from(logits, (v) => Math.exp(v - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    const order = [...exp.keys()].sort((a, b) => exp[b]! - exp[a]!).slice(0, topK);
    const names = IMAGENET_CLASSES as Record<number, string>;
    return order.map((i) => ({ className: names[i] ?? `class ${i}`, probability: exp[i]! / sum }));
  }

  dispose(): void {
    const s = this.session;
    this.session = undefined;
    s?.release().catch(() => {}); // releasing twice or after a failed run is harmless
  }

  private async run(batch: readonly RgbImage[], output: string): Promise<Float32Array> {
    if (!this.session) throw usage(`embedder ${this.id} (onnx) was disposed`);
    let pixels: Float32Array;
    const reuse = !this.pixelsInUse;
    try {
      if (reuse) this.pixels ??= new Float32Array(this.batchSize * this.inputSize * this.inputSize * 3);
      pixels = packFrames(batch, this.inputSize, reuse ? this.pixels : undefined);
    } catch (err) {
      throw usage(`${(err as Error).message} (${this.id}: decode with size ${this.inputSize})`);
    }
    if (reuse) this.pixelsInUse = true;
    const input = new ort.Tensor('float32', pixels, [batch.length, this.inputSize, this.inputSize, 3]);
    try {
      const result = await this.session.run({ [INPUT_NAME]: input }, [output]);
      return result[output]!.data as Float32Array;
    } catch (err) {
      throw new FramewiseError(ErrorCodes.MODEL_INVALID, `onnxruntime failed on ${this.id}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
    } finally {
      input.dispose();
      if (reuse) this.pixelsInUse = false;
    }
  }
}
