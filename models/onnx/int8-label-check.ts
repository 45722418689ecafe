// Per bundle, on its first use with an int8 export: the share of frames whose label is the same
// whichever precision embeds them. The export's own check (int8-agreement.ts) bounds how far its
// embeddings drift from fp32's; whether that drift flips a bundle's labels depends on the bundle
// (its classes, its margins), so it is measured once per (bundle bytes, int8 file bytes) pair and
// cached in the cache folder (the bundle folder may be read-only).
//
// Frames: short runs of consecutive frames (at the bundle's rate and crop) from up to a few videos
// of the int8 export's calibration sources, else the run's own inputs, else the shared data next
// to the models; each run goes through the head from the zero state, as `label` would step it.
// Both embeddings come from single-threaded ONNX Runtime sessions on this thread.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { isVideoFile } from '../../core/video-files.ts';
import type { CropPolicy } from '../../core/types.ts';
import { BUNDLE_FILES } from '../recurrent/bundle-meta.ts';
import type { RecurrentHead } from '../recurrent/head.ts';
import { isUnknown, unknownRuleOf, type UnknownFarMeta } from '../unknown-rule.ts';
import { ensureOnnx, sha256 } from './cache.ts';
import { INT8_THRESHOLDS } from './int8-agreement.ts';
import { resolveModelsDir } from './layers-source.ts';
import { embedderInfo } from '../registry.ts';
import { MotionStream, withMotion, type FeatureSet } from '../motion.ts';
import { openSession, runSession, type RgbFrame } from './verify.ts';
import { rawFrames } from './calibration-frames.ts';

/** Bump when what is measured changes, so older records are measured again. */
const CHECK_VERSION = 1;

export interface LabelAgreementRecord {
  version: number;
  /** sha256 over the bundle's files; the int8 ONNX file's sha256. */
  bundleSha256: string;
  int8Sha256: string;
  /** Share of the frames whose label (argmax, or unknown by the bundle's rule) equals fp32's; null when no frames were found. */
  agreement: number | null;
  frames: number;
  clips: string[];
  measuredAt: string;
}

export interface LabelCheckOptions {
  bundleDir: string;
  head: RecurrentHead;
  meta: {
    readonly classes: readonly string[];
    readonly embedderId: string;
    readonly fps: number | null;
    readonly crop: CropPolicy;
    readonly features?: FeatureSet;
    readonly unknownBelow?: number;
    readonly unknownFar?: UnknownFarMeta;
  };
  /** The int8 ONNX file the embedder runs. */
  int8File: string;
  /** Videos (files or folders) to take the frames from, tried in order until one holds videos. */
  sources: readonly (string | undefined)[];
  modelsDir?: string;
  cacheDir: string;
  /** Videos used, and consecutive frames taken from each. Defaults 6 and 48. */
  clips?: number;
  framesPerClip?: number;
}

/** sha256 over the bundle's three files, in a fixed order. */
export async function bundleSha256(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of [BUNDLE_FILES.meta, BUNDLE_FILES.model, BUNDLE_FILES.weights]) {
    h.update(`${f}\n`);
    h.update(await readFile(join(dir, f)));
  }
  return h.digest('hex');
}

export const labelCheckPath = (cacheDir: string, bundleHash: string, int8Hash: string): string =>
  join(cacheDir, 'int8-labels', `${bundleHash.slice(0, 16)}-${int8Hash.slice(0, 16)}.json`);

/** The cached record for this bundle and int8 file, else measured now and cached. */
export async function int8LabelAgreement(o: LabelCheckOptions): Promise<LabelAgreementRecord & { cached: boolean; file: string }> {
  const int8Bytes = new Uint8Array(await readFile(o.int8File));
  const bundleHash = await bundleSha256(o.bundleDir);
  const int8Hash = sha256(int8Bytes);
  const file = labelCheckPath(o.cacheDir, bundleHash, int8Hash);
  try {
    const r = JSON.parse(await readFile(file, 'utf8')) as LabelAgreementRecord;
    if (r.version === CHECK_VERSION && r.bundleSha256 === bundleHash && r.int8Sha256 === int8Hash) return { ...r, cached: true, file };
  } catch {
    // none yet (or unreadable): measure
  }
  const size = embedderInfo(o.meta.embedderId).inputSize;
  const videos = await firstVideos(o.sources, o.clips ?? 6);
  const fp32 = await ensureOnnx({ id: o.meta.embedderId, modelsDir: o.modelsDir, cacheDir: o.cacheDir });
  const fs = await openSession(fp32.bytes, 1, `ONNX file ${fp32.path}`);
  const qs = await openSession(int8Bytes, 1, `int8 ONNX file ${o.int8File}`);
  const rule = unknownRuleOf(o.meta);
  let same = 0;
  let total = 0;
  const clips: string[] = [];
  try {
    for (const v of videos) {
      const frames = await decodeRun(v, size, o.meta.fps, o.meta.crop, o.framesPerClip ?? 48);
      if (frames.length === 0) continue;
      // The head's inputs as labeling makes them: the motion stream (the same for both) after the embedding.
      const stream = o.meta.features === 'appearance+motion' ? new MotionStream() : undefined;
      const motion = stream && frames.map((f) => stream.next({ rgb: f.rgb, width: size, height: size }));
      const inputs = (embeddings: Float32Array[]) => (motion ? embeddings.map((e, t) => withMotion(e, motion[t]!)) : embeddings);
      const a = await labelsOf(o.head, rule, inputs(await embedAll(fs, frames, size)), o.meta.classes.length);
      const b = await labelsOf(o.head, rule, inputs(await embedAll(qs, frames, size)), o.meta.classes.length);
      for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
      total += a.length;
      clips.push(v);
    }
  } finally {
    await fs.release();
    await qs.release();
  }
  const record: LabelAgreementRecord = {
    version: CHECK_VERSION,
    bundleSha256: bundleHash,
    int8Sha256: int8Hash,
    agreement: total ? same / total : null,
    frames: total,
    clips,
    measuredAt: new Date().toISOString(),
  };
  try {
    await mkdir(join(o.cacheDir, 'int8-labels'), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(record, null, 2) + '\n');
    await rename(tmp, file);
  } catch {
    // a read-only cache: measured again next time
  }
  return { ...record, cached: false, file };
}

/** One line with the figure, for the log and the refusal. */
export function describeLabelAgreement(r: LabelAgreementRecord & { cached?: boolean }): string {
  if (r.agreement === null) return 'label agreement with fp32 not measured (no videos to measure it on)';
  return `labels equal to fp32's on ${(r.agreement * 100).toFixed(1)}% of ${r.frames} frames (${r.clips.length} clip(s)${r.cached ? ', cached' : ''}; threshold ${(INT8_THRESHOLDS.labelAgreement * 100).toFixed(0)}%)`;
}

/** Refuses (E_MODEL_INVALID) a measured agreement below `threshold` (default INT8_THRESHOLDS.labelAgreement). */
export function assertLabelAgreement(r: LabelAgreementRecord, bundle: string, threshold: number = INT8_THRESHOLDS.labelAgreement): void {
  if (r.agreement === null || r.agreement >= threshold) return;
  throw new FramewiseError(
    ErrorCodes.MODEL_INVALID,
    `refusing int8 embeddings for bundle ${bundle}: its labels equal fp32's on ${(r.agreement * 100).toFixed(1)}% of ${r.frames} frames ` +
      `(${r.clips.length} clip(s)), below ${(threshold * 100).toFixed(1)}%; run it with --precision fp32 (or auto, which falls back to fp32), ` +
      `or train it on int8 embeddings (framewise train --precision int8)`,
  );
}

async function firstVideos(sources: readonly (string | undefined)[], max: number): Promise<string[]> {
  for (const s of sources) {
    if (!s || !existsSync(s)) continue;
    const found: string[] = [];
    await listVideos(resolve(s), found);
    if (found.length === 0) continue;
    // Spread over the list, so one folder of near-identical takes does not fill the sample.
    const take = Math.min(max, found.length);
    return Array.from({ length: take }, (_, i) => found[Math.floor((i * found.length) / take)]!);
  }
  return [];
}

async function listVideos(path: string, out: string[]): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (!s) return;
  if (s.isFile()) {
    if (isVideoFile(path)) out.push(path);
    return;
  }
  for (const name of (await readdir(path)).sort()) await listVideos(join(path, name), out);
}

/**
 * The first `count` frames of a video at the bundle's rate and crop. ffmpeg's plain scale and crop,
 * not label's decode chain (pipeline/, a layer above this one): the same pixels go to both
 * precisions, which is all the comparison needs.
 */
function decodeRun(path: string, size: number, fps: number | null, crop: CropPolicy, count: number): Promise<RgbFrame[]> {
  const fit =
    crop === 'pad'
      ? `scale=${size}:${size}:force_original_aspect_ratio=decrease,pad=${size}:${size}:(ow-iw)/2:(oh-ih)/2`
      : `scale=${size}:${size}:force_original_aspect_ratio=increase,crop=${size}:${size}`;
  return rawFrames(path, [...(fps ? [`fps=${fps}`] : []), fit].join(','), size, count);
}

async function embedAll(session: Awaited<ReturnType<typeof openSession>>, frames: readonly RgbFrame[], size: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < frames.length; i += 8) {
    const batch = frames.slice(i, i + 8);
    const { embedding } = await runSession(session, batch, size);
    const dim = embedding.length / batch.length;
    for (let k = 0; k < batch.length; k++) out.push(embedding.slice(k * dim, (k + 1) * dim));
  }
  return out;
}

/** Each frame's label index (classes.length for unknown) through the head from the zero state. */
async function labelsOf(head: RecurrentHead, rule: ReturnType<typeof unknownRuleOf>, embeddings: Float32Array[], classes: number): Promise<number[]> {
  const probs = head.predict(embeddings, 16);
  return probs.map((p, t) => {
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
    return isUnknown(rule, p[best]!, embeddings[t]) ? classes : best;
  });
}

/** Where the check frames come from when nothing better is given: the shared data next to the models. */
export function defaultLabelCheckData(modelsDir?: string): string {
  return join(resolveModelsDir(modelsDir), '..', 'data');
}

/** The folders and files the int8 export was calibrated on (its sidecar's record), if any. */
export async function calibrationSources(int8File: string): Promise<string[]> {
  try {
    const s = JSON.parse(await readFile(`${int8File}.json`, 'utf8')) as { calibration?: { sources?: string[] } };
    return s.calibration?.sources ?? [];
  } catch {
    return [];
  }
}
