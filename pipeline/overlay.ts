// `--overlay out.mp4`: the source video, every source frame kept, with the current label, its
// score and one probability bar per class drawn on it by ffmpeg.
//
// How: one generated ASS subtitle script rendered by ffmpeg's `ass` filter (libass). Text and the
// bars (ASS vector drawings, so they need no font) change by timed events, which libass looks up
// per frame: one filter, one pass, no per-frame work in Node and no pipe of raw frames. drawtext
// with sendcmd would need one drawbox filter per class plus a command per change, and re-inits
// drawtext on every change. Events are merged while what they draw stays the same (same bar width
// in pixels, same text), so a steady prediction costs a handful of events however long it runs.
//
// Timing: labels come at the bundle fps (e.g. 10) and the source may be 30 fps; each source frame
// shows the latest label at or before its own timestamp. ASS times are whole centiseconds and the
// filter truncates a frame's time to whole ms, so every switch is placed on a centisecond strictly
// between the last source frame before the label and the first at or after it (from ffprobe's
// packet timestamps); that is exact for sources up to ~60 fps and off by at most one frame beyond.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { passthroughOption, probe, requireBinary, sourceFrameTimes } from './probe.ts';
import { ensureDir, outputError } from './sinks/files.ts';
import { readFramesJsonl } from './sinks/jsonl.ts';
import { UNKNOWN_LABEL, type FrameLabel } from '../core/types.ts';

export interface OverlayOptions {
  /** The source video (a file path). */
  input: string;
  /** The video to write; the extension picks the codecs: .webm -> VP9 + Opus, else H.264 + AAC. */
  output: string;
  /** Labels in time order, or the path of a `<name>.frames.jsonl` written by the JSONL sink.
   * Timestamps are ms from the start of the video as ffmpeg presents it (container start time
   * subtracted), the timeline of the decoder's frames. */
  labels: readonly FrameLabel[] | string;
  /** Class order of `probs`; required for FrameLabel[] input, read from the JSONL otherwise. */
  classes?: readonly string[];
  /** Called with frames rendered so far and the source's frame count (when known). */
  onProgress?: (frames: number, totalFrames: number | undefined) => void;
  /** Aborting kills ffmpeg and removes the partial output (rejects with E_CANCELLED). */
  signal?: AbortSignal;
}

export interface OverlayResult {
  output: string;
  /** Source frames (each got one output frame). */
  frames: number;
  width: number;
  height: number;
}

/** Where things are drawn, in source pixels (also used by tests to look at the right place). */
export interface OverlayLayout {
  fontSize: number;
  panel: Rect;
  header: { x: number; y: number; size: number };
  rows: { name: { x: number; y: number; size: number }; bar: Rect }[];
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Top-left panel sized to the frame: the header, then one row per class (name, bar). */
export function overlayLayout(width: number, height: number, classes: readonly string[]): OverlayLayout {
  const fontSize = Math.max(10, Math.round(height / 22));
  const pad = Math.max(3, Math.round(fontSize / 3));
  const headerSize = Math.round(fontSize * 1.25);
  // Rows shrink so that the panel stays inside the frame even with many classes.
  const rowH = Math.max(4, Math.min(Math.round(fontSize * 1.25), Math.floor((height - 3 * pad - headerSize * 1.3) / Math.max(1, classes.length))));
  const nameSize = Math.max(6, Math.min(fontSize, Math.round(rowH * 0.8)));
  // Name column: a rough average glyph width of 0.55 em is enough for a background box.
  const longest = Math.max(...classes.map((c) => c.length), 1);
  const nameW = Math.min(Math.round(width * 0.3), Math.round(longest * nameSize * 0.55) + pad);
  const barW = Math.max(20, Math.min(Math.round(width * 0.25), width - nameW - 3 * pad));
  const panel = { x: pad, y: pad, w: nameW + barW + 2 * pad, h: Math.round(headerSize * 1.3) + classes.length * rowH + pad };
  const top = panel.y + Math.round(headerSize * 1.3);
  const barH = Math.max(2, Math.round(rowH * 0.6));
  return {
    fontSize,
    panel,
    header: { x: panel.x + pad, y: panel.y + Math.round(pad / 2), size: headerSize },
    rows: classes.map((_, i) => ({
      name: { x: panel.x + pad, y: top + i * rowH, size: nameSize },
      bar: { x: panel.x + pad + nameW, y: top + i * rowH + Math.round((rowH - barH) / 2), w: barW, h: barH },
    })),
  };
}

// ASS colours are &HAABBGGRR with alpha 00 = opaque.
const COLOR = {
  panel: '&H40000000',
  track: '&HA0FFFFFF',
  bar: '&H00C8C8C8',
  top: '&H0040E040',
  text: '&H00FFFFFF',
  // `unknown` (none of the classes): a neutral grey header, and no bar is the top one.
  unknown: '&H00A0A0A0',
};

/** ASS time: H:MM:SS.cc from whole centiseconds. */
function assTime(cs: number): string {
  const c = Math.max(0, Math.round(cs));
  const h = Math.floor(c / 360_000);
  const m = Math.floor(c / 6000) % 60;
  const s = Math.floor(c / 100) % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${h}:${pad(m)}:${pad(s)}.${pad(c % 100)}`;
}

/** Label text may not open override blocks or break lines. */
function assText(s: string): string {
  return s
    .replace(/\\/g, '\u29F5')
    .replace(/\{/g, '(')
    .replace(/\}/g, ')')
    .replace(/[\r\n]+/g, ' ');
}

function box(r: Rect, color: string): string {
  const c = color.slice(4);
  const a = color.slice(2, 4);
  return `{\\an7\\pos(${r.x},${r.y})\\bord0\\shad0\\1c&H${c}&\\1a&H${a}&\\p1}m 0 0 l ${r.w} 0 ${r.w} ${r.h} 0 ${r.h}{\\p0}`;
}

/**
 * Centisecond at which each label (after the first) starts showing: strictly between the last
 * source frame before it and the first one at or after it, 1.5 ms away from both so that the
 * filter's truncation of frame times to whole ms cannot move a frame across it.
 */
export function switchTimesCs(labelTimesMs: readonly number[], sourceTimesMs: readonly number[]): number[] {
  const out: number[] = [];
  let j = 0; // first source frame at or after the current label
  for (let i = 1; i < labelTimesMs.length; i++) {
    const t = labelTimesMs[i] - 1e-3;
    while (j < sourceTimesMs.length && sourceTimesMs[j] < t) j++;
    const before = j > 0 ? sourceTimesMs[j - 1] : undefined;
    const after = j < sourceTimesMs.length ? sourceTimesMs[j] : undefined;
    let cs: number;
    if (after === undefined || before === undefined) {
      cs = Math.floor((labelTimesMs[i] - 1.5) / 10);
    } else {
      cs = Math.ceil((before + 1.5) / 10);
      if (cs * 10 > after - 1.5) cs = Math.round((before + after) / 20); // > ~60 fps: nearest
    }
    out.push(Math.max(cs, out.at(-1) ?? 0));
  }
  return out;
}

/** The ASS script for the overlay (pure, for tests). */
export function buildOverlayAss(
  labels: readonly FrameLabel[],
  classes: readonly string[],
  video: { width: number; height: number; sourceTimesMs: readonly number[]; durationMs: number },
): string {
  const L = overlayLayout(video.width, video.height, classes);
  const endCs = Math.ceil(video.durationMs / 10) + 100; // past the last frame, whatever the rounding
  const lines: string[] = [];
  const dialogue = (layer: number, from: number, to: number, text: string) => {
    if (to > from) lines.push(`Dialogue: ${layer},${assTime(from)},${assTime(to)},FW,,0,0,0,,${text}`);
  };

  // Static parts: the panel, the class names, the bar tracks.
  dialogue(0, 0, endCs, box(L.panel, COLOR.panel));
  classes.forEach((c, k) => {
    const { name, bar } = L.rows[k];
    dialogue(1, 0, endCs, `{\\an7\\pos(${name.x},${name.y})\\fs${name.size}}${assText(c)}`);
    dialogue(1, 0, endCs, box(bar, COLOR.track));
  });

  // Dynamic parts: one track per element, an event per run of identical drawing.
  const starts = [
    0,
    ...switchTimesCs(
      labels.map((l) => l.timestampMs),
      video.sourceTimesMs,
    ),
  ];
  // `text` null = not started, '' = draws nothing (a zero-width bar).
  type Track = { text: string | null; from: number };
  const header: Track = { text: null, from: 0 };
  const bars: Track[] = classes.map(() => ({ text: null, from: 0 }));
  const emit = (layer: number, track: Track, text: string | null, at: number) => {
    if (text === track.text) return;
    if (track.text) dialogue(layer, track.from, at, track.text);
    track.text = text;
    track.from = at;
  };
  labels.forEach((l, i) => {
    const at = starts[i];
    const tint = l.label === UNKNOWN_LABEL ? `\\1c&H${COLOR.unknown.slice(4)}&` : '';
    emit(3, header, `{\\an7\\pos(${L.header.x},${L.header.y})\\fs${L.header.size}\\b1${tint}}${assText(l.label)}  ${l.score.toFixed(2)}`, at);
    const top = classes.indexOf(l.label);
    classes.forEach((_, k) => {
      const bar = L.rows[k].bar;
      const w = Math.round(Math.min(1, Math.max(0, l.probs[k])) * bar.w);
      emit(2, bars[k], w > 0 ? box({ ...bar, w }, k === top ? COLOR.top : COLOR.bar) : '', at);
    });
  });
  // Close the open runs after the last frame.
  emit(3, header, null, endCs);
  bars.forEach((b) => emit(2, b, null, endCs));

  return [
    '[Script Info]',
    'ScriptType: v4.00+',
    `PlayResX: ${video.width}`,
    `PlayResY: ${video.height}`,
    'WrapStyle: 2',
    'ScaledBorderAndShadow: yes',
    '',
    '[V4+ Styles]',
    'Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding',
    `Style: FW,DejaVu Sans,${L.fontSize},${COLOR.text},${COLOR.text},&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,7,0,0,0,1`,
    '',
    '[Events]',
    'Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text',
    ...lines,
    '',
  ].join('\n');
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; signal?: AbortSignal; onStdout?: (s: string) => void } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (opts.onStdout) opts.onStdout(d);
      else stdout += d;
    });
    // Only the tail matters for the error message; keep memory bounded on chatty failures.
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
    // SIGKILL: the partial output is deleted anyway, nothing to finalize.
    const onAbort = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err: NodeJS.ErrnoException) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(
        err.code === 'ENOENT' ? new FramewiseError(ErrorCodes.FFMPEG_MISSING, `${cmd} not found: install ffmpeg (it provides ${cmd})`, { cause: err }) : err,
      );
    });
    child.on('close', (code) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) reject(new FramewiseError(ErrorCodes.CANCELLED, `${cmd} cancelled`));
      else resolve({ code, stdout, stderr });
    });
  });
}

/** What the overlay needs of the source: its size, length, audio, and every frame's source time. */
async function overlaySource(input: string): Promise<{ width: number; height: number; durationMs: number; sourceTimesMs: number[]; hasAudio: boolean }> {
  const [info, sourceTimesMs] = await Promise.all([probe(input), sourceFrameTimes(input)]);
  const durationMs = info.durationMs || (sourceTimesMs.at(-1) ?? 0) + 1000;
  return { width: info.width, height: info.height, durationMs, sourceTimesMs, hasAudio: info.hasAudio };
}

export async function renderOverlay(options: OverlayOptions): Promise<OverlayResult> {
  const input = path.resolve(options.input);
  const output = path.resolve(options.output);
  if (!fs.existsSync(input)) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `input not found: ${options.input}`);
  const { labels, classes } =
    typeof options.labels === 'string'
      ? readFramesJsonl(options.labels, options.classes)
      : { labels: options.labels, classes: options.classes ? [...options.classes] : undefined };
  if (!classes || classes.length === 0) throw new FramewiseError(ErrorCodes.USAGE, 'renderOverlay: classes are required with FrameLabel[] input');
  if (labels.length === 0) throw new FramewiseError(ErrorCodes.USAGE, 'renderOverlay: no labels to draw');
  ensureDir(path.dirname(output));

  if (options.signal?.aborted) throw new FramewiseError(ErrorCodes.CANCELLED, `overlay of ${options.input} cancelled`);
  const info = await overlaySource(input);
  if (options.signal?.aborted) throw new FramewiseError(ErrorCodes.CANCELLED, `overlay of ${options.input} cancelled`);
  const ass = buildOverlayAss(labels, classes, info);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'framewise-overlay-'));
  const ext = path.extname(output).toLowerCase() || '.mp4';
  const partial = path.join(path.dirname(output), `.${path.basename(output, path.extname(output))}.${process.pid}.partial${ext}`);
  try {
    fs.writeFileSync(path.join(work, 'overlay.ass'), ass);
    const webm = ext === '.webm';
    // yuv420p for players and browsers; it needs even sides, so odd sources keep their format.
    const even = info.width % 2 === 0 && info.height % 2 === 0;
    const args = [
      '-hide_banner',
      '-nostdin',
      '-y',
      '-v',
      'error',
      '-progress',
      'pipe:1',
      '-i',
      input,
      '-map',
      '0:v:0',
      '-map',
      '0:a?',
      // Run from `work` so the filter argument is a bare file name (no filtergraph escaping).
      '-vf',
      'ass=overlay.ass',
      // One output frame per source frame, same timestamps: never duplicate or drop.
      ...passthroughOption(requireBinary('ffmpeg')),
      ...(webm
        ? ['-c:v', 'libvpx-vp9', '-b:v', '0', '-crf', '32', '-deadline', 'realtime', '-cpu-used', '8']
        : ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20']),
      ...(even ? ['-pix_fmt', 'yuv420p'] : []),
      ...(info.hasAudio ? (webm ? ['-c:a', 'libopus'] : ['-c:a', 'aac', '-b:a', '160k']) : []),
      ...(webm ? [] : ['-movflags', '+faststart']),
      partial,
    ];
    let frames = 0;
    const total = info.sourceTimesMs.length || undefined;
    const r = await run(requireBinary('ffmpeg'), args, {
      cwd: work,
      signal: options.signal,
      onStdout: (chunk) => {
        const m = [...chunk.matchAll(/^frame=(\d+)/gm)].at(-1);
        if (m) {
          frames = Number(m[1]);
          options.onProgress?.(frames, total);
        }
      },
    });
    if (r.code !== 0) {
      throw new FramewiseError(
        ErrorCodes.OUTPUT_FAILED,
        `ffmpeg could not render the overlay ${options.output}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
      );
    }
    try {
      fs.renameSync(partial, output);
    } catch (err) {
      throw outputError(output, err);
    }
    return { output, frames: frames || info.sourceTimesMs.length, width: info.width, height: info.height };
  } finally {
    fs.rmSync(partial, { force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}
