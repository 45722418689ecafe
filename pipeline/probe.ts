// ffprobe helper: what an input holds (size, rate, duration, streams), asked before decoding so
// that a missing file, a non-video or an audio-only file gets a clear, typed error up front.
// The binaries themselves are found by core/ffmpeg-binaries.ts (re-exported here for the stages).
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { INSTALL_HINT, locateBinary, requireBinary, type FoundBinary } from '../core/ffmpeg-binaries.ts';

export interface VideoInfo {
  /** Frame size as decoded (ffmpeg auto-rotates, so a 90° rotation swaps the coded sides). */
  width: number;
  height: number;
  /** Mean frame rate (avg_frame_rate, else r_frame_rate); 0 when the container does not tell. */
  fps: number;
  /** Duration of the video stream in ms (the container's when the stream has none); 0 if unknown. */
  durationMs: number;
  /** Decoded frame count with `countFrames` (exact, slow); otherwise the container's declared count, if any. */
  frameCount?: number;
  hasAudio: boolean;
  /** ffmpeg codec name of the video stream, e.g. 'h264', 'mpeg4'. */
  codec: string;
  /** ffprobe's container name, e.g. 'avi', 'mov,mp4,m4a,3gp,3g2,mj2', 'matroska,webm'. */
  container?: string;
  /** ffmpeg codec name of the first audio stream, when there is one. */
  audioCodec?: string;
}

export interface ProbeOptions {
  /** Decode the whole video stream to count frames exactly (`ffprobe -count_frames`). */
  countFrames?: boolean;
}

/** True for inputs ffmpeg opens by protocol (http, https, rtsp, rtmp, udp, ...), not as a local path. */
export function isUrl(input: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(input);
}

export { findBinary, locateBinary, passthroughOption, requireBinary, type FfmpegTool, type FoundBinary } from '../core/ffmpeg-binaries.ts';

/** Paths and versions of ffmpeg and ffprobe, each absent when not installed (for `framewise doctor`). */
export async function ffmpegAvailable(): Promise<{
  ffmpeg?: { path: string; version: string; source: FoundBinary['source'] };
  ffprobe?: { path: string; version: string; source: FoundBinary['source'] };
}> {
  const result: {
    ffmpeg?: { path: string; version: string; source: FoundBinary['source'] };
    ffprobe?: { path: string; version: string; source: FoundBinary['source'] };
  } = {};
  await Promise.all(
    (['ffmpeg', 'ffprobe'] as const).map(async (tool) => {
      const found = locateBinary(tool);
      if (!found) return;
      const { path, source } = found;
      const out = await run(path, ['-hide_banner', '-version'], 10_000).catch(() => undefined);
      // First line: "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) ..."
      const version = out?.stdout.match(/version\s+(\S+)/)?.[1];
      if (version) result[tool] = { path, version, source };
    }),
  );
  return result;
}

/** Probes a local file or URL. Not stdin: probing a pipe would consume what decode needs. */
export async function probe(input: string, opts: ProbeOptions = {}): Promise<VideoInfo> {
  if (input === '-' || input.startsWith('pipe:')) {
    throw new FramewiseError(ErrorCodes.USAGE, 'cannot probe stdin without consuming it; decode it directly');
  }
  if (!isUrl(input)) assertLocalFile(input);
  const ffprobe = requireBinary('ffprobe');
  const args = ['-v', 'error', '-hide_banner', '-show_streams', '-show_format', '-of', 'json'];
  if (opts.countFrames) args.push('-count_frames');
  args.push(isUrl(input) ? input : `file:${input}`);
  const { stdout, stderr, code } = await run(ffprobe, args, opts.countFrames ? 600_000 : 60_000);
  if (code !== 0) throw ffmpegFailure(input, stderr, 'ffprobe could not read');
  let parsed: FfprobeJson;
  try {
    parsed = JSON.parse(stdout) as FfprobeJson;
  } catch (err) {
    throw new FramewiseError(ErrorCodes.DECODE_FAILED, `ffprobe gave unreadable output for ${input}`, { cause: err });
  }
  return toVideoInfo(input, parsed, opts.countFrames === true);
}

/**
 * Presentation times (ms) of every frame of a local file's video stream, from packet timestamps
 * (no decoding, so it is fast), sorted because B-frames store packets out of display order. The
 * origin is the container's start time, the one ffmpeg subtracts: these are the times `decode`
 * reports for the same frames (source time, in framewise's one definition).
 */
export async function sourceFrameTimes(path: string): Promise<number[]> {
  assertLocalFile(path);
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time:format=start_time', '-of', 'json', `file:${path}`];
  const { stdout, stderr, code } = await run(requireBinary('ffprobe'), args, 600_000);
  if (code !== 0) throw ffmpegFailure(path, stderr, 'ffprobe could not read');
  let parsed: { packets?: { pts_time?: string }[]; format?: { start_time?: string } };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch (err) {
    throw new FramewiseError(ErrorCodes.DECODE_FAILED, `ffprobe gave unreadable output for ${path}`, { cause: err });
  }
  const start = Number(parsed.format?.start_time ?? 0) || 0;
  return (parsed.packets ?? [])
    .map((p) => (Number(p.pts_time) - start) * 1000)
    .filter((t) => Number.isFinite(t))
    .sort((a, b) => a - b);
}

/** INPUT_NOT_FOUND for a missing local path, or one that is not a regular file. */
export function assertLocalFile(path: string): void {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `input not found: ${path}`, { cause: err });
  }
  if (!isFile) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `input is not a file: ${path}`);
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  nb_frames?: string;
  nb_read_frames?: string;
  disposition?: { attached_pic?: number };
  tags?: { rotate?: string };
  side_data_list?: { rotation?: number }[];
}
interface FfprobeJson {
  streams?: FfprobeStream[];
  format?: { duration?: string; format_name?: string };
}

function toVideoInfo(input: string, json: FfprobeJson, counted: boolean): VideoInfo {
  const streams = json.streams ?? [];
  // Cover art in audio files is a one-picture "video" stream; it is not a video (decode maps 0:V:0).
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  // No audio, video or subtitle stream at all (none, or only unknown "data"): a header cut before
  // its streams were described, or no media file; either way damaged, not audio only.
  if (!streams.some((s) => s.codec_type === 'video' || s.codec_type === 'audio' || s.codec_type === 'subtitle')) {
    throw new FramewiseError(
      ErrorCodes.DECODE_FAILED,
      `${input} is damaged: no audio or video stream could be read from its header (a truncated or corrupt file)`,
    );
  }
  if (!video) {
    const kinds = streams.map((s) => s.codec_type ?? '?').join(', ') || 'none';
    throw new FramewiseError(ErrorCodes.NO_VIDEO_STREAM, `no video stream in ${input} (streams: ${kinds})`);
  }
  // A partly cut header (e.g. an MP4's moov atom) leaves a stream entry with no codec and no size:
  // the file is damaged, not free of video.
  if (!video.codec_name || !video.width || !video.height) {
    throw new FramewiseError(ErrorCodes.DECODE_FAILED, `${input} is damaged: its video stream has no readable codec or size (a truncated or corrupt header)`);
  }
  const rotation = Number(video.side_data_list?.find((d) => d.rotation !== undefined)?.rotation ?? video.tags?.rotate ?? 0);
  const quarterTurn = Math.abs(Math.round(rotation / 90)) % 2 === 1;
  const w = video.width ?? 0;
  const h = video.height ?? 0;
  const durationSec = Number(video.duration ?? json.format?.duration ?? 0);
  const count = counted ? video.nb_read_frames : video.nb_frames;
  const frameCount = count !== undefined && /^\d+$/.test(count) ? Number(count) : undefined;
  return {
    width: quarterTurn ? h : w,
    height: quarterTurn ? w : h,
    fps: rate(video.avg_frame_rate) || rate(video.r_frame_rate),
    durationMs: Number.isFinite(durationSec) ? Math.round(durationSec * 1e6) / 1e3 : 0,
    ...(frameCount !== undefined ? { frameCount } : {}),
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
    codec: video.codec_name ?? 'unknown',
    ...(json.format?.format_name ? { container: json.format.format_name } : {}),
    ...(streams.find((s) => s.codec_type === 'audio')?.codec_name ? { audioCodec: streams.find((s) => s.codec_type === 'audio')!.codec_name } : {}),
  };
}

/** "30000/1001" -> 29.97; "0/0" or garbage -> 0. */
function rate(r: string | undefined): number {
  const m = r?.match(/^(\d+)\/(\d+)$/);
  if (!m || Number(m[2]) === 0) return 0;
  return Number(m[1]) / Number(m[2]);
}

/**
 * The lines of ffmpeg/ffprobe stderr worth showing a user: warnings and errors, without the
 * banner, the stream listing, per-frame logs or memory addresses. Works with `-loglevel
 * level+...` output (lines tagged "[error]") and with plain `-v error` output (every line counts).
 */
export function meaningfulStderr(stderr: string | string[], max = 6): string[] {
  const lines = Array.isArray(stderr) ? stderr : stderr.split(/\r?\n/);
  const tagged = lines.some((l) => /\[(info|warning|error|fatal|panic|verbose|debug)\] /.test(l));
  const kept: string[] = [];
  let keepContinuation = false;
  for (const raw of lines) {
    const line = raw.replace(/ @ 0x[0-9a-f]+\]/gi, ']').trimEnd();
    if (!line.trim()) continue;
    const level = line.match(/\[(info|warning|error|fatal|panic|verbose|debug)\] /)?.[1];
    if (tagged && !level) {
      // Untagged lines continue the previous message (e.g. "To ignore this, add a trailing '?'").
      if (keepContinuation) kept.push(line.trim());
      continue;
    }
    const useful = !tagged || level === 'error' || level === 'fatal' || level === 'panic' || (level === 'warning' && !BENIGN_WARNING.test(line));
    keepContinuation = useful;
    if (useful) kept.push(line.replace(/\[(warning|error|fatal|panic)\] /, '').trim());
  }
  // Per-packet errors repeat with other offsets and timestamps: keep the first of each kind, counted.
  const counts = new Map<string, { line: string; n: number }>();
  for (const line of kept) {
    const key = line.replace(/0x[0-9a-f]+|\d+/gi, '#');
    const seen = counts.get(key);
    if (seen) seen.n += 1;
    else counts.set(key, { line, n: 1 });
  }
  return [...counts.values()].slice(-max).map(({ line, n }) => (n > 1 ? `${line} (x${n})` : line));
}

/** Warnings that every healthy decode of some files prints (swscale on yuvj* sources). */
const BENIGN_WARNING = /deprecated pixel format used|Guessed Channel Layout|Consider using the mpeg4_unpack_bframes/;

/** Maps a failed ffmpeg/ffprobe run to a typed error whose message carries the useful stderr. */
export function ffmpegFailure(input: string, stderr: string | string[], verb: string): FramewiseError {
  const lines = meaningfulStderr(stderr).map((l) => l.split(`file:${input}`).join(input));
  const text = lines.join('\n');
  const detail = lines.length ? `:\n  ${lines.join('\n  ')}` : ' (ffmpeg printed no error)';
  if (/matches no streams|does not contain any stream|Stream specifier .* matches no streams/i.test(text)) {
    return new FramewiseError(ErrorCodes.NO_VIDEO_STREAM, `no video stream in ${input}${detail}`);
  }
  if (/No such file or directory|Server returned 40[34]|Connection refused|Failed to resolve hostname|Name or service not known|Is a directory/i.test(text)) {
    return new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `input not found: ${input}${detail}`);
  }
  return new FramewiseError(ErrorCodes.DECODE_FAILED, `${verb} ${input} as a video${detail}`);
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 256 * 1024 * 1024, timeout: timeoutMs, windowsHide: true }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new FramewiseError(ErrorCodes.FFMPEG_MISSING, `${cmd} could not be run: ${INSTALL_HINT}`, { cause: err }));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
  });
}
