// Generates small labeled video datasets with ffmpeg's lavfi sources, for the demo, tests and
// benchmarks. Five activities: three a single frame tells apart (bars, pattern, off) and two that
// need memory: `blink` alternates a light colour with black every few frames, so any single
// light frame looks exactly like `steady` and any dark one like `off`.
//
//   npx tsx scripts/synth-dataset.ts --out DIR [--videos 8] [--layout frames|folders] [--seed 1]
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { seededRandom } from '../core/seeded-random.ts';
import { requireBinary } from '../pipeline/probe.ts';

const run = promisify(execFile);

export const SYNTH_CLASSES = ['steady', 'off', 'blink', 'bars', 'pattern'] as const;
export type SynthClass = (typeof SYNTH_CLASSES)[number];

/** Light colours shared by `steady` and the lit phase of `blink`, so a lit frame is ambiguous. */
const LIGHTS = ['white', 'lightyellow', 'lightcyan', 'mistyrose'];

export interface SynthOptions {
  out: string;
  /** Frame rate of the generated videos (and of their label files). */
  fps?: number;
  width?: number;
  height?: number;
  seed?: number;
}

export interface SynthSegment {
  cls: SynthClass;
  frames: number;
}

/** The lavfi source for one segment; `rand` picks colours and phases. */
function sourceFor(seg: SynthSegment, o: Required<Omit<SynthOptions, 'out'>>, rand: () => number): string {
  const size = `s=${o.width}x${o.height}:r=${o.fps}`;
  const light = LIGHTS[Math.floor(rand() * LIGHTS.length)];
  switch (seg.cls) {
    case 'steady':
      return `color=c=${light}:${size}`;
    case 'off':
      return `color=c=black:${size}`;
    case 'blink': {
      // Lit for `half` frames, dark for `half`: a period short enough to see twice in a second.
      const half = 2 + Math.floor(rand() * 2);
      const phase = Math.floor(rand() * 2 * half);
      return `color=c=${light}:${size},drawbox=x=0:y=0:w=iw:h=ih:c=black:t=fill:enable='gte(mod(n+${phase},${2 * half}),${half})'`;
    }
    case 'bars':
      return `smptebars=${size}`;
    case 'pattern':
      return `testsrc2=${size}`;
  }
}

/**
 * Writes one H.264 video made of the given segments back to back, each exactly `frames` long,
 * with mild per-frame noise so no two frames are byte-identical. Returns the per-frame labels.
 */
export async function writeSegmentsVideo(path: string, segments: SynthSegment[], options: Omit<SynthOptions, 'out'> = {}): Promise<string[]> {
  const o = { fps: 10, width: 320, height: 240, seed: 1, ...options };
  const rand = seededRandom(o.seed);
  const inputs: string[] = [];
  const chains: string[] = [];
  segments.forEach((seg, i) => {
    inputs.push('-f', 'lavfi', '-i', sourceFor(seg, o, rand));
    chains.push(`[${i}:v]trim=end_frame=${seg.frames},setpts=PTS-STARTPTS,format=yuv420p[v${i}]`);
  });
  const concat = `${segments.map((_, i) => `[v${i}]`).join('')}concat=n=${segments.length}:v=1:a=0,noise=alls=6:allf=t[out]`;
  await run(requireBinary('ffmpeg'), [
    '-v',
    'error',
    '-y',
    ...inputs,
    '-filter_complex',
    [...chains, concat].join(';'),
    '-map',
    '[out]',
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-crf',
    '18',
    '-pix_fmt',
    'yuv420p',
    '-r',
    String(o.fps),
    path,
  ]);
  return segments.flatMap((s) => Array<string>(s.frames).fill(s.cls));
}

/** Random segments, each 2-5 s, never the same class twice in a row. */
export function randomSegments(count: number, fps: number, rand: () => number, classes: readonly SynthClass[] = SYNTH_CLASSES): SynthSegment[] {
  const segs: SynthSegment[] = [];
  for (let i = 0; i < count; i++) {
    let cls: SynthClass;
    do cls = classes[Math.floor(rand() * classes.length)]!;
    while (segs.length > 0 && segs[segs.length - 1]!.cls === cls);
    segs.push({ cls, frames: Math.round((2 + rand() * 3) * fps) });
  }
  return segs;
}

export interface SynthDatasetOptions extends SynthOptions {
  videos?: number;
  /** 'frames': videos/<name>.mp4 + labels/<name>.txt; 'folders': <class>/<clip>.mp4, one class per clip. */
  layout?: 'frames' | 'folders';
  segmentsPerVideo?: number;
}

export async function synthDataset(options: SynthDatasetOptions): Promise<{ root: string; videos: { path: string; labels: string[] }[] }> {
  const o = { videos: 8, layout: 'frames' as const, segmentsPerVideo: 6, fps: 10, seed: 1, ...options };
  const rand = seededRandom(o.seed);
  const videos: { path: string; labels: string[] }[] = [];
  if (o.layout === 'frames') {
    await mkdir(join(o.out, 'videos'), { recursive: true });
    await mkdir(join(o.out, 'labels'), { recursive: true });
    for (let v = 0; v < o.videos; v++) {
      const name = `synth_${String(v).padStart(3, '0')}`;
      const path = join(o.out, 'videos', `${name}.mp4`);
      const segs = randomSegments(o.segmentsPerVideo, o.fps, rand);
      const labels = await writeSegmentsVideo(path, segs, { ...o, seed: o.seed * 1000 + v });
      await writeFile(join(o.out, 'labels', `${name}.txt`), labels.join('\n') + '\n');
      videos.push({ path, labels });
    }
  } else {
    for (let v = 0; v < o.videos; v++) {
      const cls = SYNTH_CLASSES[v % SYNTH_CLASSES.length]!;
      await mkdir(join(o.out, cls), { recursive: true });
      const path = join(o.out, cls, `clip_${String(v).padStart(3, '0')}.mp4`);
      const frames = Math.round((2 + rand() * 2) * o.fps);
      const labels = await writeSegmentsVideo(path, [{ cls, frames }], { ...o, seed: o.seed * 1000 + v });
      videos.push({ path, labels });
    }
  }
  return { root: o.out, videos };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      videos: { type: 'string', default: '8' },
      layout: { type: 'string', default: 'frames' },
      seed: { type: 'string', default: '1' },
      fps: { type: 'string', default: '10' },
    },
  });
  if (!values.out) {
    process.stderr.write('usage: synth-dataset.ts --out DIR [--videos 8] [--layout frames|folders] [--seed 1] [--fps 10]\n');
    process.exit(2);
  }
  const ds = await synthDataset({
    out: values.out,
    videos: Number(values.videos),
    layout: values.layout as 'frames' | 'folders',
    seed: Number(values.seed),
    fps: Number(values.fps),
  });
  process.stdout.write(`wrote ${ds.videos.length} videos to ${ds.root}\n`);
}
