// An ONNX export is used only after it reproduces tfjs. The reference is the layers model the export
// was made from (same dequantised weights, nothing converted in between), run on the active tfjs
// backend up to its GlobalAveragePooling2D layer: the backends agree with each other to ~1e-5 on
// these models (SOURCE.txt: cpu 6e-6, wasm 1.1e-5..2.1e-5 against the graph model), so the 1e-4
// tolerance keeps a 5-10x margin over float noise, while an export bug (a pad on the wrong side, a
// kernel transposed the wrong way) moves embeddings by 1e-2 or more. The plain-JS cpu backend would
// be the most literal reference but takes ~5 s per 224x224 frame for the 1.0 models, too slow for
// verification on first use; `framewise models export-onnx` prints which backend was the reference.
import { requireBinary } from '../../core/ffmpeg-binaries.ts';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { EMBEDDING_NAME, INPUT_NAME, LOGITS_NAME } from './export.ts';
import { resolveModelsDir } from './layers-source.ts';
import { decodeModelSummary } from './proto.ts';

/** Max |onnx - tfjs| allowed on any embedding element. */
export const EMBEDDING_TOLERANCE = 1e-4;
/** Logits run to ~20 in magnitude, so their float noise is larger; classify needs far less. */
export const LOGITS_TOLERANCE = 1e-3;

export interface RgbFrame {
  rgb: Uint8Array;
  width: number;
  height: number;
}

export interface VerifyResult {
  ok: boolean;
  id: string;
  maxAbsDiff: number;
  maxLogitDiff: number;
  tolerance: number;
  frames: number;
  /** 'photos' when the shared test photos were found, else deterministic synthetic frames. */
  inputs: 'photos' | 'synthetic';
  /** The tfjs backend the reference ran on. */
  backend: string;
  /** Why it failed, in words, when !ok. */
  reason?: string;
}

/** `<models-dir>/../data/images` when it exists (the project's shared photos sit next to the
 * shared models); elsewhere verification falls back to synthetic frames. */
export function defaultImagesDir(modelsDir?: string): string {
  return join(resolveModelsDir(modelsDir), '..', 'data', 'images');
}

const IMAGE_EXTS = new Set(['.jpg', '.jpeg', '.png', '.bmp']);

/** Decodes one image to size x size rgb24: scale to cover, then centre crop (as the decode stage does). */
export function decodeImage(path: string, size: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const args = [
      '-v',
      'error',
      '-i',
      path,
      '-vf',
      `scale=${size}:${size}:force_original_aspect_ratio=increase,crop=${size}:${size}`,
      '-frames:v',
      '1',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-',
    ];
    const ff = spawn(requireBinary('ffmpeg'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    ff.stdout.on('data', (c: Buffer) => chunks.push(c));
    ff.stderr.on('data', (c: Buffer) => (err += c.toString()));
    ff.on('error', (e) => reject(new FramewiseError(ErrorCodes.FFMPEG_MISSING, `ffmpeg could not be started: ${e.message}`, { cause: e })));
    ff.on('close', (code) => {
      const bytes = Buffer.concat(chunks);
      if (code !== 0 || bytes.length !== size * size * 3) {
        reject(new FramewiseError(ErrorCodes.DECODE_FAILED, `ffmpeg could not decode ${path}: ${err.trim() || `exit ${code}`}`));
      } else resolve(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    });
  });
}

/** Deterministic frames with edges, gradients and saturated areas, for machines without the photos. */
export function syntheticFrames(count: number, size: number): RgbFrame[] {
  const frames: RgbFrame[] = [];
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let f = 0; f < count; f++) {
    const rgb = new Uint8Array(size * size * 3);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const i = (y * size + x) * 3;
        const block = ((x >> (3 + f)) + (y >> (3 + f))) & 1;
        rgb[i] = (x * 255) / (size - 1);
        rgb[i + 1] = block ? 255 : (y * 255) / (size - 1);
        rgb[i + 2] = Math.floor(rand() * 256);
      }
    frames.push({ rgb, width: size, height: size });
  }
  return frames;
}

type VerificationFrames = { frames: RgbFrame[]; inputs: 'photos' | 'synthetic' };
/** Decoded once per process and folder: the photos are read-only inputs, and a server may verify several models. */
const decoded = new Map<string, Promise<VerificationFrames>>();

/** The photos in `dir` decoded to size x size, or synthetic frames when there are none. */
export function verificationFrames(dir: string, size: number): Promise<VerificationFrames> {
  const key = `${size}:${dir}`;
  let p = decoded.get(key);
  if (!p) {
    p = decodeAll(dir, size);
    decoded.set(key, p);
    p.catch(() => decoded.delete(key));
  }
  return p;
}

async function decodeAll(dir: string, size: number): Promise<VerificationFrames> {
  let names: string[] = [];
  try {
    names = (await readdir(dir)).filter((n) => IMAGE_EXTS.has(extname(n).toLowerCase())).sort();
  } catch {
    // no photos on this machine: fall through to synthetic frames
  }
  if (names.length === 0) return { frames: syntheticFrames(4, size), inputs: 'synthetic' };
  const frames = await Promise.all(names.map(async (n) => ({ rgb: await decodeImage(join(dir, n), size), width: size, height: size })));
  return { frames, inputs: 'photos' };
}

/**
 * Packs frames into one NHWC float32 batch of raw 0..255 values (the engines' common input),
 * into the front of `into` when it is given and large enough (see OrtEmbedder's reused buffer).
 */
export function packFrames(frames: readonly RgbFrame[], size: number, into?: Float32Array): Float32Array {
  const plane = size * size * 3;
  const out = into && into.length >= frames.length * plane ? into.subarray(0, frames.length * plane) : new Float32Array(frames.length * plane);
  frames.forEach((f, n) => {
    if (!f || !(f.rgb instanceof Uint8Array) || f.width !== size || f.height !== size || f.rgb.length !== plane) {
      throw new FramewiseError(ErrorCodes.USAGE, `frame ${n} is ${f?.width}x${f?.height} (${f?.rgb?.length} bytes); the embedder takes ${size}x${size} rgb24`);
    }
    out.set(f.rgb, n * plane);
  });
  return out;
}

/** The tfjs reference: embedding and pre-softmax logits of the layers model, as flat arrays. */
export async function tfjsReference(model: tf.LayersModel, frames: readonly RgbFrame[]): Promise<{ embedding: Float32Array; logits: Float32Array }> {
  const size = (model.inputs[0]!.shape[1] as number) ?? 224;
  const pool = model.layers.find((l) => l.getClassName() === 'GlobalAveragePooling2D');
  const last = model.layers[model.layers.length - 1]!;
  // The logits are the input of the softmax: a Softmax layer, or an Activation('softmax') before a Reshape.
  const softmax =
    [...model.layers]
      .reverse()
      .find(
        (l) => l.getClassName() === 'Softmax' || (l.getClassName() === 'Activation' && (l.getConfig() as { activation?: string }).activation === 'softmax'),
      ) ?? last;
  if (!pool) throw new FramewiseError(ErrorCodes.MODEL_INVALID, 'layers model has no GlobalAveragePooling2D layer');
  const sub = tf.model({ inputs: model.inputs, outputs: [pool.output as tf.SymbolicTensor, softmax.input as tf.SymbolicTensor] });
  const [emb, logits] = tf.tidy(() => {
    const x = tf.tensor4d(packFrames(frames, size), [frames.length, size, size, 3]).div(127.5).sub(1);
    const [e, l] = sub.predict(x) as tf.Tensor[];
    return [e!, l!.reshape([frames.length, -1])];
  });
  try {
    return { embedding: (await emb!.data()) as Float32Array, logits: (await logits!.data()) as Float32Array };
  } finally {
    emb!.dispose();
    logits!.dispose();
  }
}

/**
 * Opens an ONNX session; unreadable or invalid bytes become MODEL_INVALID. Without `spin`, idle
 * intra-op threads sleep instead of busy-waiting: measured here with other work on the 2 cores,
 * 2 spinning threads took 70-80 ms/frame for v2 where 2 sleeping threads took 31-34 ms.
 */
export async function openSession(bytes: Uint8Array, threads: number, what: string, spin = false): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: spin ? '1' : '0' } } },
    });
  } catch (err) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `${what} is not a loadable ONNX model: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

/** Runs the session on raw-pixel frames; returns flat embedding and logits. */
export async function runSession(
  session: ort.InferenceSession,
  frames: readonly RgbFrame[],
  size: number,
): Promise<{ embedding: Float32Array; logits: Float32Array }> {
  const input = new ort.Tensor('float32', packFrames(frames, size), [frames.length, size, size, 3]);
  const out = await session.run({ [INPUT_NAME]: input });
  try {
    return { embedding: out[EMBEDDING_NAME]!.data as Float32Array, logits: out[LOGITS_NAME]!.data as Float32Array };
  } finally {
    input.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export interface VerifyOptions {
  id: string;
  bytes: Uint8Array;
  /** The loaded layers model of `id` (the reference). */
  model: tf.LayersModel;
  /** Frames to compare on; default: the shared photos, else synthetic frames. */
  frames?: { frames: RgbFrame[]; inputs: 'photos' | 'synthetic' };
  imagesDir?: string;
  modelsDir?: string;
}

/** Compares an ONNX file with the layers model. Never throws for a mismatch: the result says it. */
export async function verifyOnnx(opts: VerifyOptions): Promise<VerifyResult> {
  const size = opts.model.inputs[0]!.shape[1] as number;
  const base = { id: opts.id, tolerance: EMBEDDING_TOLERANCE, frames: 0, inputs: 'photos' as VerifyResult['inputs'], backend: tf.getBackend() };
  const fail = (reason: string, maxAbs = Infinity, maxLogit = Infinity): VerifyResult => ({
    ...base,
    ok: false,
    maxAbsDiff: maxAbs,
    maxLogitDiff: maxLogit,
    reason,
  });

  // Structural checks first: they need no photos and no tfjs run.
  let fileId: string | undefined;
  try {
    fileId = decodeModelSummary(opts.bytes).metadata['framewise.embedder_id'];
  } catch (err) {
    return fail(`not an ONNX protobuf (${(err as Error).message})`);
  }
  if (fileId !== undefined && fileId !== opts.id) return fail(`it is the export of "${fileId}", not "${opts.id}"`);

  let session: ort.InferenceSession;
  try {
    session = await openSession(opts.bytes, 1, 'the file');
  } catch (err) {
    return fail((err as Error).message);
  }
  try {
    if (!session.inputNames.includes(INPUT_NAME) || !session.outputNames.includes(EMBEDDING_NAME) || !session.outputNames.includes(LOGITS_NAME)) {
      return fail(`its inputs/outputs are [${session.inputNames}] -> [${session.outputNames}], not ${INPUT_NAME} -> ${EMBEDDING_NAME}, ${LOGITS_NAME}`);
    }
    const { frames, inputs } = opts.frames ?? (await verificationFrames(opts.imagesDir ?? defaultImagesDir(opts.modelsDir), size));
    Object.assign(base, { frames: frames.length, inputs });
    const ref = await tfjsReference(opts.model, frames);
    const got = await runSession(session, frames, size).catch((e: Error) => e);
    if (got instanceof Error) return fail(`it fails to run: ${got.message.split('\n')[0]}`);
    if (got.embedding.length !== ref.embedding.length) {
      return fail(`its embedding has ${got.embedding.length / frames.length} dims, tfjs has ${ref.embedding.length / frames.length}`);
    }
    const d = maxAbsDiff(ref.embedding, got.embedding);
    const dl = maxAbsDiff(ref.logits, got.logits);
    if (!(d <= EMBEDDING_TOLERANCE)) return fail(`embeddings differ from tfjs by up to ${d.toExponential(2)} (tolerance ${EMBEDDING_TOLERANCE})`, d, dl);
    if (!(dl <= LOGITS_TOLERANCE)) return fail(`logits differ from tfjs by up to ${dl.toExponential(2)} (tolerance ${LOGITS_TOLERANCE})`, d, dl);
    return { ...base, ok: true, maxAbsDiff: d, maxLogitDiff: dl };
  } finally {
    await session.release();
  }
}

/** Throws MODEL_INVALID naming the file when a verification failed. */
export function assertVerified(result: VerifyResult, what: string): void {
  if (!result.ok) {
    throw new FramewiseError(
      ErrorCodes.MODEL_INVALID,
      `refusing ONNX file ${what} for "${result.id}": ${result.reason} (checked on ${result.frames} ${result.inputs} against tfjs ${result.backend}); rebuild it with \`framewise models export-onnx ${result.id}\``,
    );
  }
}
