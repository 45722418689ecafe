// Real frames for calibrating and checking the int8 export: photos and frames sampled from videos,
// scaled to cover and centre-cropped to the model's input (as verification decodes photos). The
// sample is split in two disjoint halves, calibration and check, so the agreement figures are
// measured on frames the ranges were not fitted to. The fingerprint names the sample (files, sizes,
// frame counts), so a cached int8 file says which frames it was calibrated on.
import { passthroughOption, requireBinary } from '../../core/ffmpeg-binaries.ts';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { isVideoFile } from '../../core/video-files.ts';
import { decodeImage, type RgbFrame } from './verify.ts';

const IMAGE_EXTS = new Set(['.jpg', '.jpeg', '.png', '.bmp']);

export interface FrameSample {
  calibration: RgbFrame[];
  check: RgbFrame[];
  /** sha256 over the sampled files' paths, sizes and frame counts, and the sampling rule. */
  fingerprint: string;
  /** Files the frames came from. */
  files: string[];
}

export interface SampleOptions {
  /** Files or folders (searched recursively) of images and videos. */
  sources: readonly string[];
  size: number;
  /** Most frames in all (split half and half). Default 128. */
  maxFrames?: number;
  /** Frames taken from one video, spread over its length. Default 8. */
  perVideo?: number;
}

async function listMedia(path: string, out: string[]): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `calibration source ${path} does not exist`);
  if (s.isFile()) {
    out.push(resolve(path));
    return;
  }
  for (const name of (await readdir(path)).sort()) {
    const p = join(path, name);
    const st = await stat(p).catch(() => undefined);
    if (st?.isDirectory()) await listMedia(p, out);
    else if (IMAGE_EXTS.has(extname(name).toLowerCase()) || isVideoFile(name)) out.push(p);
  }
}

/** Up to `count` frames spread over a video: every 4th frame of the first `count * 4` (different poses within a clip, without probing its length). */
function sampleVideo(path: string, size: number, count: number): Promise<RgbFrame[]> {
  return rawFrames(path, `select='not(mod(n\\,4))',scale=${size}:${size}:force_original_aspect_ratio=increase,crop=${size}:${size}`, size, count);
}

/**
 * The first `count` frames of a video through the filter chain `vf` (ending in size x size), as
 * rgb24. An unreadable file gives no frames (the callers' other files still count).
 */
export function rawFrames(path: string, vf: string, size: number, count: number): Promise<RgbFrame[]> {
  return new Promise((resolveFrames) => {
    const ffmpeg = requireBinary('ffmpeg');
    const ff = spawn(
      ffmpeg,
      ['-v', 'error', '-i', path, '-vf', vf, ...passthroughOption(ffmpeg), '-frames:v', String(count), '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const chunks: Buffer[] = [];
    ff.stdout.on('data', (c: Buffer) => chunks.push(c));
    ff.on('error', () => resolveFrames([]));
    ff.on('close', () => {
      const all = Buffer.concat(chunks);
      const plane = size * size * 3;
      const frames: RgbFrame[] = [];
      for (let o = 0; o + plane <= all.length; o += plane) frames.push({ rgb: new Uint8Array(all.subarray(o, o + plane)), width: size, height: size });
      resolveFrames(frames);
    });
  });
}

/** Samples frames from the sources and splits them alternately into calibration and check frames. */
export async function sampleFrames(opts: SampleOptions): Promise<FrameSample> {
  const maxFrames = opts.maxFrames ?? 128;
  const perVideo = opts.perVideo ?? 8;
  const files: string[] = [];
  for (const s of opts.sources) await listMedia(s, files);
  // Spread the budget over the files: every n-th file when there are more than the budget allows.
  const videos = files.filter((f) => !IMAGE_EXTS.has(extname(f).toLowerCase()));
  const images = files.filter((f) => IMAGE_EXTS.has(extname(f).toLowerCase()));
  const videoBudget = Math.max(0, maxFrames - images.length);
  const take = Math.min(videos.length, Math.ceil(videoBudget / perVideo));
  const picked = take === 0 ? [] : Array.from({ length: take }, (_, i) => videos[Math.floor((i * videos.length) / take)]!);
  const hash = createHash('sha256').update(`size=${opts.size};max=${maxFrames};perVideo=${perVideo};every4\n`);
  const frames: RgbFrame[] = [];
  const used: string[] = [];
  for (const f of images.slice(0, maxFrames)) {
    const rgb = await decodeImage(f, opts.size).catch(() => undefined);
    if (!rgb) continue;
    frames.push({ rgb, width: opts.size, height: opts.size });
    used.push(f);
    hash.update(`${f}:${(await stat(f)).size}:1\n`);
  }
  for (const f of picked) {
    if (frames.length >= maxFrames) break;
    const got = await sampleVideo(f, opts.size, Math.min(perVideo, maxFrames - frames.length));
    if (got.length === 0) continue;
    frames.push(...got);
    used.push(f);
    hash.update(`${f}:${(await stat(f)).size}:${got.length}\n`);
  }
  if (frames.length < 4) {
    throw new FramewiseError(
      ErrorCodes.USAGE,
      `calibration needs real frames: found ${frames.length} in ${opts.sources.join(', ')} (give --calibrate DIR with photos or videos)`,
    );
  }
  return {
    calibration: frames.filter((_, i) => i % 2 === 0),
    check: frames.filter((_, i) => i % 2 === 1),
    fingerprint: hash.digest('hex'),
    files: used,
  };
}
