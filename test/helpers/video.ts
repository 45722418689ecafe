// Test clips made at test time with ffmpeg's lavfi sources, in throw-away temp folders, plus the
// ffprobe/ffmpeg look-ups tests compare against. Needs ffmpeg and ffprobe on PATH.
//
//   const dir = tmpDir();                       // afterAll(() => dir.cleanup())
//   const clip = await makeClip({ durationSec: 2, fps: 25, width: 320, height: 240, dir: dir.path });
//   expect(await countFrames(clip)).toBe(50);
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The shared real videos (read-only). */
export const VIDEO_DIR = resolve(REPO_ROOT, '../shared/data/video');

export interface TmpDir {
  path: string;
  /** Absolute path of a file name inside the folder. */
  file(name: string): string;
  /** Removes the folder and everything in it; safe to call twice. */
  cleanup(): void;
}

/** A fresh folder under os.tmpdir(). */
export function tmpDir(prefix = 'framewise-test-'): TmpDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ClipSpec {
  durationSec: number;
  fps: number;
  width: number;
  height: number;
  /** lavfi source: 'testsrc2' (moving pattern, default), 'color' (flat `color`), 'black'. */
  pattern?: 'testsrc2' | 'color' | 'black';
  /** Color name or 0xRRGGBB for 'color' (default 'white'). */
  color?: string;
  /** Extra -vf filters applied to the generated frames (e.g. drawbox borders, setpts for VFR). */
  filters?: string[];
  /** Extra ffmpeg output arguments, placed before the output path. */
  extra?: string[];
  /** Default: h264 in mp4 (faststart, so it also streams through a pipe); ffv1 in mkv for odd sides. */
  codec?: 'h264' | 'mpeg4' | 'ffv1';
  container?: 'mp4' | 'mkv' | 'avi';
  /** Adds a sine audio track. */
  audio?: boolean;
  /** Folder for the clip (default: one temp folder per test process, removed at exit). */
  dir?: string;
}

let sharedDir: TmpDir | undefined;
const made = new Map<string, Promise<string>>();

/** Generates a clip (once per identical spec and process) and returns its path. */
export function makeClip(spec: ClipSpec): Promise<string> {
  const key = JSON.stringify(spec);
  let clip = made.get(key);
  if (!clip) {
    clip = generate(spec);
    made.set(key, clip);
    clip.catch(() => made.delete(key));
  }
  return clip;
}

async function generate(spec: ClipSpec): Promise<string> {
  const odd = spec.width % 2 === 1 || spec.height % 2 === 1;
  const codec = spec.codec ?? (odd ? 'ffv1' : 'h264');
  const container = spec.container ?? (codec === 'ffv1' ? 'mkv' : codec === 'mpeg4' ? 'avi' : 'mp4');
  const dir = spec.dir ?? defaultDir();
  const name = `clip-${spec.pattern ?? 'testsrc2'}-${spec.width}x${spec.height}-${spec.fps}fps-${spec.durationSec}s-${made.size}-${Date.now()}.${container}`;
  const out = join(dir, name);
  // lavfi sources round odd sides down to even: make an even picture and crop it in 4:4:4.
  const size = `${spec.width + (spec.width % 2)}x${spec.height + (spec.height % 2)}`;
  const filters = [...(odd ? ['format=yuv444p', `crop=${spec.width}:${spec.height}:0:0`] : []), ...(spec.filters ?? [])];
  const pattern = spec.pattern ?? 'testsrc2';
  const src =
    pattern === 'testsrc2'
      ? `testsrc2=size=${size}:rate=${spec.fps}:duration=${spec.durationSec}`
      : `color=c=${pattern === 'black' ? 'black' : (spec.color ?? 'white')}:size=${size}:rate=${spec.fps}:duration=${spec.durationSec}`;
  const args = ['-hide_banner', '-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', src];
  if (spec.audio) args.push('-f', 'lavfi', '-i', `sine=frequency=440:duration=${spec.durationSec}`);
  if (filters.length) args.push('-vf', filters.join(','));
  const codecArgs: Record<typeof codec, string[]> = {
    h264: ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
    mpeg4: ['-c:v', 'mpeg4', '-q:v', '3'],
    ffv1: ['-c:v', 'ffv1', '-pix_fmt', 'yuv444p'],
  };
  args.push(...codecArgs[codec]);
  if (container === 'mp4') args.push('-movflags', '+faststart');
  if (spec.audio) args.push('-c:a', container === 'avi' ? 'pcm_s16le' : 'aac', '-shortest');
  args.push(...(spec.extra ?? []), out);
  await execTool('ffmpeg', args);
  return out;
}

function defaultDir(): string {
  if (!sharedDir) {
    const dir = tmpDir();
    sharedDir = dir;
    process.once('exit', () => dir.cleanup());
  }
  return sharedDir.path;
}

/** An audio-only file (lavfi sine in WAV): a valid media file with no video stream. */
export async function makeAudioOnly(dir: string, durationSec = 1): Promise<string> {
  const out = join(dir, `audio-only-${Date.now()}.wav`);
  await execTool('ffmpeg', ['-hide_banner', '-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', `sine=frequency=440:duration=${durationSec}`, out]);
  return out;
}

/** A text file with a video-like name. */
export function makeTextFile(dir: string, name = 'not-a-video.mp4'): string {
  const out = join(dir, name);
  writeFileSync(out, 'this is not a video\n'.repeat(50));
  return out;
}

/** The first `fraction` of a file's bytes, as a truncated copy. */
export function truncateCopy(src: string, dir: string, fraction = 0.5): string {
  const bytes = readFileSync(src);
  const out = join(dir, `truncated-${Math.round(fraction * 100)}-${src.split('/').pop()}`);
  writeFileSync(out, bytes.subarray(0, Math.floor(bytes.length * fraction)));
  return out;
}

/** Frames ffprobe decodes in the first video stream (`ffprobe -count_frames`). */
export async function countFrames(path: string): Promise<number> {
  const out = await execTool('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    'V:0',
    '-count_frames',
    '-show_entries',
    'stream=nb_read_frames',
    '-of',
    'csv=p=0',
    path,
  ]);
  const n = Number(out.trim().split(/\s+/)[0]);
  if (!Number.isInteger(n)) throw new Error(`ffprobe gave no frame count for ${path}: ${out}`);
  return n;
}

/**
 * Frame count after resampling to `fps` the way decode does (ffmpeg's fps filter): re-encode
 * losslessly with `-vf fps=N -fps_mode passthrough` and count the result with ffprobe -count_frames.
 */
export async function countFramesAtFps(path: string, fps: number, dir: string): Promise<number> {
  const out = join(dir, `refps-${fps}-${Date.now()}.mkv`);
  await execTool('ffmpeg', [
    '-hide_banner',
    '-v',
    'error',
    '-nostdin',
    '-y',
    '-i',
    path,
    '-map',
    '0:V:0',
    '-vf',
    `fps=${fps}`,
    '-fps_mode',
    'passthrough',
    '-c:v',
    'ffv1',
    out,
  ]);
  try {
    return await countFrames(out);
  } finally {
    rmSync(out, { force: true });
  }
}

/** Presentation times (ms) of every video frame, from ffprobe (independent of decode's showinfo); NaN where ffprobe has none. */
export async function frameTimesMs(path: string): Promise<number[]> {
  // best_effort_timestamp is the time ffmpeg gives a decoded frame (AVI frames have no pts_time).
  const out = await execTool('ffprobe', ['-v', 'error', '-select_streams', 'V:0', '-show_entries', 'frame=best_effort_timestamp_time', '-of', 'csv=p=0', path]);
  return out
    .split('\n')
    .map((l) => l.trim().replace(/,$/, ''))
    .filter((l) => l.length > 0)
    .map((l) => (l === 'N/A' ? Number.NaN : Number(l) * 1000));
}

/** Pids of ffmpeg processes that are children of this process (read from /proc; Linux only). */
export function ffmpegChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid ..."; comm may hold spaces, so split after the last ')'.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (comm === 'ffmpeg' && Number(ppid) === process.pid && state !== 'Z') pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** True while a process with that pid exists (a zombie counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until `check` holds, polling; throws after `timeoutMs`. */
export async function waitFor(check: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** File size in bytes. */
export function fileSize(path: string): number {
  return statSync(path).size;
}

function execTool(tool: 'ffmpeg' | 'ffprobe', args: string[]): Promise<string> {
  return new Promise((ok, fail) => {
    execFile(tool, args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${tool} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else ok(String(stdout));
    });
  });
}
