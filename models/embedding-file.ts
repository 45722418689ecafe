// The embedding cache file: what `framewise embed` writes and training reads, so a video is run
// through the CNN once per (embedder, fps, crop).
//
// Layout (little-endian):
//   bytes 0-7   magic "FWEMB1\n\0"
//   bytes 8-11  uint32 H = length of the header in bytes
//   12 .. 12+H  header, UTF-8 JSON (EmbeddingFileHeader), space-padded so the data starts 4-aligned
//   then        frames * dim float32 values, frame-major (frame 0's dim values first)
//
// Source identity: sha256 of the whole file's bytes, for every size. Hashing reads at disk speed
// (about 1 s per GB) while embedding runs at tens of frames per second, so it costs under 1% of an
// embed run, and unlike path+size+mtime it survives copies and renames and catches in-place edits.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import type { CropPolicy } from '../core/types.ts';
import type { FeatureSet } from './motion.ts';

export interface EmbeddingFileHeader {
  format: 'framewise-embeddings';
  version: 1;
  /** Embedder id (models/registry.ts). */
  embedder: string;
  /** Floats per frame. */
  dim: number;
  /** Frames per second the video was sampled at; null = the source's own rate. */
  fps: number | null;
  crop: CropPolicy;
  /**
   * The decode chain the frames came from (pipeline/decode.ts DECODE_REVISION). Files written by
   * another revision (or before there was one) are not reused: their pixels were scaled differently.
   */
  decoder?: string;
  /** The input: its path as given, sha256 of its bytes (hex), its size in bytes. */
  source: { path: string; sha256: string; bytes: number };
  frames: number;
  /** One presentation time in ms per frame, from the stream's timing. */
  timestampsMs: number[];
  /** How frames were augmented before embedding (training passes), if at all. */
  augmentation?: unknown;
  /** The embedder's precision (models/precision.ts); absent in files from before int8, which are fp32. */
  precision?: 'fp32' | 'int8';
  /** What each frame's floats are (models/motion.ts); absent in files from before the motion stream: 'appearance'. */
  features?: FeatureSet;
}

const MAGIC = Buffer.from('FWEMB1\n\0', 'latin1');
const PREFIX = MAGIC.length + 4;

export async function writeEmbeddingFile(path: string, header: Omit<EmbeddingFileHeader, 'format' | 'version'>, embeddings: Float32Array[]): Promise<void> {
  const full: EmbeddingFileHeader = { format: 'framewise-embeddings', version: 1, ...header };
  const problem = headerProblem(full) ?? (embeddings.length !== full.frames ? `${embeddings.length} embeddings for ${full.frames} frames` : undefined);
  const bad = embeddings.findIndex((e) => !(e instanceof Float32Array) || e.length !== full.dim);
  if (problem || bad >= 0) {
    throw new FramewiseError(ErrorCodes.USAGE, `cannot write ${path}: ${problem ?? `embedding ${bad} is not a Float32Array of length ${full.dim}`}`);
  }
  let json = Buffer.from(JSON.stringify(full), 'utf8');
  const pad = (4 - ((PREFIX + json.length) % 4)) % 4;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  const data = new Float32Array(full.frames * full.dim);
  embeddings.forEach((e, i) => data.set(e, i * full.dim));
  // Written beside the target and renamed, so a killed run never leaves a half file that looks cached.
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    await mkdir(dirname(resolve(path)), { recursive: true });
    await writeFile(tmp, Buffer.concat([MAGIC, length, json, toLittleEndian(data)]));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads and checks a file; the embeddings are views into one buffer, in frame order. */
export async function readEmbeddingFile(path: string): Promise<{ header: EmbeddingFileHeader; embeddings: Float32Array[] }> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ErrorCodes.INPUT_NOT_FOUND : ErrorCodes.MODEL_INVALID;
    throw new FramewiseError(code, `cannot read embedding file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const invalid = (why: string, cause?: unknown) =>
    new FramewiseError(ErrorCodes.MODEL_INVALID, `${path} is not a valid framewise embedding file: ${why}`, { cause });
  if (buf.length < PREFIX || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid('bad magic bytes');
  const headerBytes = buf.readUInt32LE(MAGIC.length);
  if (PREFIX + headerBytes > buf.length) throw invalid(`header of ${headerBytes} bytes runs past the end`);
  let header: EmbeddingFileHeader;
  try {
    header = JSON.parse(buf.subarray(PREFIX, PREFIX + headerBytes).toString('utf8')) as EmbeddingFileHeader;
  } catch (err) {
    throw invalid(`header is not JSON (${(err as Error).message})`, err);
  }
  const problem = headerProblem(header);
  if (problem) throw invalid(problem);
  const start = PREFIX + headerBytes;
  const expected = header.frames * header.dim * 4;
  if (buf.length - start !== expected) {
    throw invalid(`${buf.length - start} data bytes, header says ${header.frames} frames x ${header.dim} floats = ${expected} (truncated?)`);
  }
  const data = fromLittleEndian(buf.subarray(start));
  const embeddings = Array.from({ length: header.frames }, (_, i) => data.subarray(i * header.dim, (i + 1) * header.dim));
  return { header, embeddings };
}

/** sha256 (hex) and size of a file's bytes, streamed. */
export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ErrorCodes.INPUT_NOT_FOUND : ErrorCodes.DECODE_FAILED;
    throw new FramewiseError(code, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** <cacheDir>/embeddings/<first 16 hex of sha256>.<embedder>[.int8].<fps or "src">.<crop>.emb (fp32 names unchanged). */
export function defaultEmbeddingPath(
  cacheDir: string,
  sha256: string,
  embedder: string,
  fps: number | null,
  crop: CropPolicy,
  precision: 'fp32' | 'int8' = 'fp32',
  features: FeatureSet = 'appearance',
): string {
  const p = precision === 'int8' ? '.int8' : '';
  const m = features === 'appearance+motion' ? '.motion' : '';
  return join(resolve(cacheDir), 'embeddings', `${sha256.slice(0, 16)}.${embedder}${p}${m}.${fps ?? 'src'}.${crop}.emb`);
}

/** What a cached file must have been computed from to be reused. */
export interface EmbeddingRequest {
  embedder: string;
  fps: number | null;
  crop: CropPolicy;
  sha256: string;
  decoder: string;
  /** Default fp32. */
  precision?: 'fp32' | 'int8';
  /** Default 'appearance'. */
  features?: FeatureSet;
}

/** Whether a file with this header answers the request (same bytes, embedder, fps, crop and decoder). */
export function headerMatches(header: EmbeddingFileHeader, want: EmbeddingRequest): boolean {
  return (
    header.embedder === want.embedder &&
    header.fps === want.fps &&
    header.crop === want.crop &&
    header.source.sha256 === want.sha256 &&
    header.decoder === want.decoder &&
    (header.precision ?? 'fp32') === (want.precision ?? 'fp32') &&
    (header.features ?? 'appearance') === (want.features ?? 'appearance')
  );
}

/** Whether an existing file may be reused for this request. */
export async function matchingEmbeddingFile(path: string, want: EmbeddingRequest): Promise<boolean> {
  try {
    await stat(path);
    const { header } = await readEmbeddingFile(path);
    return headerMatches(header, want);
  } catch {
    return false;
  }
}

function headerProblem(h: EmbeddingFileHeader): string | undefined {
  if (h === null || typeof h !== 'object') return 'header is not an object';
  if (h.format !== 'framewise-embeddings') return `format is "${h.format}", expected "framewise-embeddings"`;
  if (h.version !== 1) return `version ${h.version} is not supported (1 expected)`;
  if (typeof h.embedder !== 'string' || !h.embedder) return 'embedder id missing';
  if (!Number.isInteger(h.dim) || h.dim < 1) return `dim ${h.dim} is not a positive integer`;
  if (h.fps !== null && !(typeof h.fps === 'number' && h.fps > 0 && Number.isFinite(h.fps))) return `fps ${h.fps} is not a positive number or null`;
  if (h.crop !== 'center' && h.crop !== 'pad') return `crop "${h.crop}" is not center or pad`;
  const s = h.source;
  if (!s || typeof s.path !== 'string' || typeof s.sha256 !== 'string' || !Number.isInteger(s.bytes) || s.bytes < 0) {
    return 'source must be {path, sha256, bytes}';
  }
  if (!Number.isInteger(h.frames) || h.frames < 0) return `frames ${h.frames} is not a count`;
  if (!Array.isArray(h.timestampsMs) || h.timestampsMs.length !== h.frames) return `timestampsMs must hold ${h.frames} numbers`;
  if (!h.timestampsMs.every((t) => typeof t === 'number' && Number.isFinite(t))) return 'timestampsMs holds a non-number';
  return undefined;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function toLittleEndian(data: Float32Array): Buffer {
  const out = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (!LITTLE_ENDIAN) out.swap32();
  return out;
}

function fromLittleEndian(bytes: Buffer): Float32Array {
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  // Else copy into a fresh, aligned buffer (a Buffer's offset in its pool need not be a multiple of 4).
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  if (!LITTLE_ENDIAN) Buffer.from(copy.buffer).swap32();
  return new Float32Array(copy.buffer);
}
