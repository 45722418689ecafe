// Playback in a browser: which videos a browser's <video> plays as they are, and an H.264 MP4
// copy (made once by ffmpeg, cached by content identity) for the rest, e.g. the MPEG-4 Part 2
// AVI files of many research datasets. Labels are always computed from the original file; the
// copy only serves playback, with the same frame times (no frame is dropped or added).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { meaningfulStderr, requireBinary, type VideoInfo } from './probe.ts';

/** Containers and codecs every current browser engine (Chromium, Firefox, Safari) decodes. */
const CONTAINERS = [/(^|,)mp4(,|$)/, /(^|,)mov(,|$)/, /(^|,)webm(,|$)/, /(^|,)ogg(,|$)/];
const VIDEO_CODECS = new Set(['h264', 'vp8', 'vp9', 'av1', 'theora']);
const AUDIO_CODECS = new Set(['aac', 'mp3', 'opus', 'vorbis', 'flac']);

/** Why a browser cannot play the file as it is, or undefined when it can. */
export function unplayableReason(info: Pick<VideoInfo, 'codec' | 'container' | 'audioCodec'>): string | undefined {
  const container = info.container ?? 'unknown';
  if (!CONTAINERS.some((re) => re.test(container))) return `browsers do not play the ${container.split(',')[0]} container`;
  if (!VIDEO_CODECS.has(info.codec)) return `browsers do not decode ${codecName(info.codec)} video`;
  if (info.audioCodec && !AUDIO_CODECS.has(info.audioCodec)) return `browsers do not decode ${info.audioCodec} audio`;
  return undefined;
}

/** Readable codec names for the messages people see. */
export function codecName(codec: string): string {
  return (
    (
      {
        mpeg4: 'MPEG-4 Part 2',
        msmpeg4v2: 'MS MPEG-4 v2',
        msmpeg4v3: 'MS MPEG-4 v3 (DivX 3)',
        hevc: 'H.265/HEVC',
        mjpeg: 'Motion JPEG',
        mpeg2video: 'MPEG-2',
        mpeg1video: 'MPEG-1',
        wmv3: 'WMV 9',
        rawvideo: 'uncompressed',
      } as Record<string, string>
    )[codec] ?? codec
  );
}

/** Where the playable copy of `input` lives in `cacheDir`: keyed by path, size and mtime. */
export function playbackCopyPath(input: string, cacheDir: string): string {
  const st = statSync(input);
  const key = createHash('sha256')
    .update(`${resolve(input)}\0${st.size}\0${st.mtimeMs}`)
    .digest('hex')
    .slice(0, 24);
  return join(cacheDir, 'playback', `${key}.mp4`);
}

export interface TranscodeOptions {
  /** Duration of the input, for progress (0 = unknown: progress stays at 0 until done). */
  durationMs: number;
  /** Fraction done in [0, 1], at most a few times a second. */
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
}

/**
 * Writes an H.264/AAC MP4 that browsers play (faststart, yuv420p, even sides) to `out`, staged
 * under a temporary name and renamed when complete. Returns `out`; an existing copy is reused.
 */
export async function transcodeForBrowser(input: string, out: string, o: TranscodeOptions): Promise<string> {
  try {
    if (statSync(out).size > 0) return out;
  } catch {
    // not made yet
  }
  mkdirSync(join(out, '..'), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp.mp4`;
  const args = [
    '-hide_banner',
    '-nostdin',
    '-y',
    '-v',
    'error',
    '-i',
    `file:${input}`,
    '-map',
    '0:v:0',
    '-map',
    '0:a:0?',
    // Even sides and 4:2:0: what browsers' H.264 decoders take. Frame times are kept as they are.
    '-vf',
    'scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '20',
    '-c:a',
    'aac',
    '-b:a',
    '128k',
    '-movflags',
    '+faststart',
    '-progress',
    'pipe:1',
    '-nostats',
    `file:${tmp}`,
  ];
  const ffmpeg = requireBinary('ffmpeg');
  await new Promise<void>((done, fail) => {
    const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let buffered = '';
    const onAbort = () => child.kill('SIGKILL');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        // out_time_us (ffmpeg 5+) and out_time_ms (all versions; microseconds despite the name).
        const m = line.match(/^out_time_(?:us|ms)=(\d+)/);
        if (m && o.durationMs > 0) o.onProgress?.(Math.min(1, Number(m[1]) / 1000 / o.durationMs));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    child.on('error', (err) => fail(new FramewiseError(ErrorCodes.FFMPEG_MISSING, `could not run ${ffmpeg}`, { cause: err })));
    child.on('close', (code) => {
      o.signal?.removeEventListener('abort', onAbort);
      if (o.signal?.aborted) fail(new FramewiseError(ErrorCodes.CANCELLED, 'playback conversion cancelled'));
      else if (code === 0) done();
      else
        fail(
          new FramewiseError(
            ErrorCodes.DECODE_FAILED,
            `ffmpeg could not convert ${input} to H.264 for playback: ${meaningfulStderr(stderr).join('; ') || `exit code ${code}`}`,
          ),
        );
    });
  }).catch((err: unknown) => {
    rmSync(tmp, { force: true });
    throw err;
  });
  renameSync(tmp, out);
  o.onProgress?.(1);
  return out;
}
