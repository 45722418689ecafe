import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildOverlayAss, overlayLayout, renderOverlay, switchTimesCs, type Rect } from '../../pipeline/overlay.ts';
import { readFramesJsonl } from '../../pipeline/sinks/jsonl.ts';
import { JsonlFileSink } from '../../pipeline/sinks/jsonl.ts';
import { labelsFromProbs } from '../helpers/frame-labels.ts';

const CLASSES = ['walk', 'sit {down}', 'wave'];
const W = 320;
const H = 240;
let dir: string;
let source: string;

// 10 fps labels over 3 s: 'walk' for the first second, then 'wave'.
const LABELS = labelsFromProbs(
  CLASSES,
  Array.from({ length: 30 }, (_, i) => (i < 10 ? [0.9, 0.05, 0.05] : [0.1, 0.2, 0.7])),
);

function ffprobeJson(file: string): { streams: { codec_type: string; nb_read_frames?: string; duration?: string }[] } {
  return JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,nb_read_frames,duration', '-of', 'json', file], {
      encoding: 'utf8',
    }),
  );
}

/** Frame `n` (0-based, in decode order of presentation) as packed RGB. */
function frameRgb(file: string, n: number): Buffer {
  return execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-vf', `select=eq(n\\,${n})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], {
    maxBuffer: 16 << 20,
  });
}

/** Mean absolute difference over a rectangle of two RGB frames. */
function meanDiff(a: Buffer, b: Buffer, r: Rect): number {
  let sum = 0;
  for (let y = r.y; y < r.y + r.h; y++)
    for (let x = r.x; x < r.x + r.w; x++) for (let c = 0; c < 3; c++) sum += Math.abs(a[(y * W + x) * 3 + c] - b[(y * W + x) * 3 + c]);
  return sum / (r.w * r.h * 3);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-overlay-'));
  source = path.join(dir, 'src.mp4');
  execFileSync('ffmpeg', [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${W}x${H}:rate=25:duration=3`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:duration=3',
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'aac',
    '-shortest',
    source,
  ]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('renderOverlay', () => {
  test('keeps every source frame, the duration and the audio, and draws where the layout says', async () => {
    const output = path.join(dir, 'out', 'overlay.mp4');
    const progress: number[] = [];
    const result = await renderOverlay({ input: source, output, labels: LABELS, classes: CLASSES, onProgress: (f) => progress.push(f) });
    expect(result).toMatchObject({ output, frames: 75, width: W, height: H });
    expect(progress.at(-1)).toBe(75);

    const src = ffprobeJson(source).streams;
    const out = ffprobeJson(output).streams;
    const video = (s: typeof src) => s.find((x) => x.codec_type === 'video')!;
    expect(video(out).nb_read_frames).toBe('75');
    expect(video(out).nb_read_frames).toBe(video(src).nb_read_frames);
    expect(Number(video(out).duration)).toBeCloseTo(Number(video(src).duration), 2);
    expect(out.some((x) => x.codec_type === 'audio')).toBe(true);
    expect(fs.readdirSync(path.dirname(output))).toEqual(['overlay.mp4']); // no partial file left

    const L = overlayLayout(W, H, CLASSES);
    const before = frameRgb(source, 5);
    const after = frameRgb(output, 5);
    const away: Rect = { x: W / 2, y: H / 2, w: W / 2, h: H / 2 };
    expect(meanDiff(before, after, L.panel)).toBeGreaterThan(25); // the panel is drawn
    expect(meanDiff(before, after, away)).toBeLessThan(6); // the rest is the source (codec noise only)

    // Labels switch at 1.0 s: source frame 25 (1.00 s) is the first to show 'wave', frame 24 (0.96 s)
    // still shows 'walk'. The bars are opaque, so only the label changes their pixels.
    const walkBar = L.rows[0].bar;
    const f20 = frameRgb(output, 20);
    const f24 = frameRgb(output, 24);
    const f25 = frameRgb(output, 25);
    expect(meanDiff(f20, f24, walkBar)).toBeLessThan(8);
    expect(meanDiff(f24, f25, walkBar)).toBeGreaterThan(20);
    expect(meanDiff(f24, f25, L.rows[2].bar)).toBeGreaterThan(20);
  });

  test('reads labels from a frames.jsonl file written by the JSONL sink', async () => {
    const jsonl = path.join(dir, 'labels.frames.jsonl');
    const sink = new JsonlFileSink(jsonl, CLASSES);
    LABELS.forEach((l) => sink.frame(l));
    sink.close();
    const back = readFramesJsonl(jsonl);
    expect(back.classes).toEqual(CLASSES);
    expect(back.labels.map((l) => l.label)).toEqual(LABELS.map((l) => l.label));
    const output = path.join(dir, 'from-jsonl.mkv');
    const result = await renderOverlay({ input: source, output, labels: jsonl });
    expect(result.frames).toBe(75);
    expect(ffprobeJson(output).streams.find((s) => s.codec_type === 'video')!.nb_read_frames).toBe('75');
  });

  test('bad inputs and outputs get their codes; an abort leaves no partial file', async () => {
    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'not a video\n');
    const blocker = path.join(dir, 'blocker');
    fs.writeFileSync(blocker, '');
    const base = { labels: LABELS, classes: CLASSES };
    await expect(renderOverlay({ ...base, input: path.join(dir, 'missing.mp4'), output: path.join(dir, 'x.mp4') })).rejects.toMatchObject({
      code: 'E_INPUT_NOT_FOUND',
    });
    await expect(renderOverlay({ ...base, input: text, output: path.join(dir, 'x.mp4') })).rejects.toMatchObject({ code: 'E_DECODE_FAILED' });
    await expect(renderOverlay({ ...base, input: source, output: path.join(blocker, 'x.mp4') })).rejects.toMatchObject({
      code: 'E_OUTPUT_FAILED',
      message: expect.stringContaining(blocker),
    });
    await expect(renderOverlay({ ...base, classes: undefined, input: source, output: path.join(dir, 'x.mp4') })).rejects.toMatchObject({ code: 'E_USAGE' });

    const ac = new AbortController();
    const abortedDir = path.join(dir, 'aborted');
    const p = renderOverlay({ ...base, input: source, output: path.join(abortedDir, 'x.mp4'), signal: ac.signal, onProgress: () => ac.abort() });
    setTimeout(() => ac.abort(), 150);
    await expect(p).rejects.toMatchObject({ code: 'E_CANCELLED' });
    expect(fs.readdirSync(abortedDir)).toEqual([]);
  });
});

describe('overlay timing and script', () => {
  /** What libass shows for a frame at `t` ms: the filter truncates to whole ms, and a float error
   * may put an exact 100 ms at 99, so both readings must give the same label. */
  function shown(starts: number[], t: number): number[] {
    return [Math.floor(t), Math.max(0, Math.floor(t - 1e-6))].map((ms) => starts.filter((cs) => cs * 10 <= ms).length - 1);
  }

  test.each([
    ['10 fps labels on 30 fps', 10, 1000 / 30],
    ['10 fps labels on 29.97 fps', 10, 1001 / 30],
    ['10 fps labels on 25 fps', 10, 40],
    ['5 fps labels on 60 fps', 5, 1000 / 60],
    ['labels offset by 7 ms on 24 fps', 10, 1000 / 24],
  ])('%s: every source frame shows the latest label at or before it', (_, fps, step) => {
    const offset = _.includes('offset') ? 7 : 0;
    const labelTimes = Array.from({ length: 50 }, (_, i) => offset + (i * 1000) / fps);
    const sourceTimes = Array.from({ length: Math.floor(5000 / step) }, (_, i) => i * step);
    const starts = [0, ...switchTimesCs(labelTimes, sourceTimes)];
    for (const t of sourceTimes) {
      const latest = Math.max(0, labelTimes.filter((lt) => lt <= t + 1e-3).length - 1);
      expect(shown(starts, t)).toEqual([latest, latest]);
    }
  });

  test('the script sets the frame size, escapes override braces, and merges unchanged drawings', () => {
    const ass = buildOverlayAss(LABELS, CLASSES, { width: W, height: H, sourceTimesMs: [], durationMs: 3000 });
    expect(ass).toContain('PlayResX: 320');
    expect(ass).toContain('PlayResY: 240');
    expect(ass).toContain('sit (down)');
    const header = ass.split('\n').filter((l) => l.startsWith('Dialogue: 3,'));
    // Two distinct header texts over 30 labels: two events, not thirty.
    expect(header).toHaveLength(2);
    expect(header[0]).toContain('walk  0.90');
    expect(header[1]).toContain('wave  0.70');
  });
});
