// A generated task that needs memory: one ball moves over a smooth background at one of three
// speeds. It moves in steps, the way a gait does: STEP pixels on some frames, still on the others,
// in a rhythm per class (slow: one frame in three, medium: every other frame, fast: two in three;
// each clip starts at a random point of its rhythm). Start position and direction are random per
// clip and the ball bounces off the edges, so every position occurs at every speed and no single
// frame tells the speed, nor does the change from the frame before (a step or no step happens at
// every speed): only the rhythm over a few frames does. Frames are drawn here (no motion blur,
// which would give a step away in one frame) and piped into ffmpeg as rgb24, so the clips are real
// H.264 videos that go through decode like any other. Same seed, same bytes (x264 on one thread).
//
//   await speedDataset({ out: DIR, clipsPerClass: 16, seed: 1 });   // DIR/<class>/clip_000.mp4
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { seededRandom } from '../../core/seeded-random.ts';

/** Per class, the frames of its rhythm on which the ball steps (1) or stays (0): STEP/3, STEP/2, 2 STEP/3 pixels per frame on average. */
export const SPEEDS = { slow: [1, 0, 0], medium: [1, 0], fast: [1, 1, 0] } as const;
export type SpeedClass = keyof typeof SPEEDS;
/** Pixels of one step, at 10 fps. */
export const STEP = 9;
export const SPEED_CLASSES = Object.keys(SPEEDS) as SpeedClass[];

export interface SpeedClipOptions {
  /** Steps (1) and pauses (0), repeated. */
  rhythm: readonly number[];
  frames: number;
  seed: number;
  /** Square side in pixels; 224 is the embedders' input, so decode neither crops nor scales. */
  size?: number;
  fps?: number;
}

const BALL_RADIUS = 40;

/**
 * A smooth colour gradient (red across, green down, a blue wave whose phase differs per clip).
 * Smooth on purpose, like the ball: MobileNet's pooled embedding of a sharp texture changes by
 * about as much for a 2-pixel shift as for an 11-pixel one (stride-32 aliasing), which hides the
 * speed; on smooth pictures the embedding's change per frame grows with the distance moved.
 */
function background(size: number, rand: () => number): Uint8Array {
  const bg = new Uint8Array(size * size * 3);
  const phase = rand() * 2 * Math.PI;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x / size;
      bg.set([40 + 170 * u, 40 + (170 * y) / size, 40 + 170 * (0.5 + 0.5 * Math.sin(phase + 3 * u))], (y * size + x) * 3);
    }
  }
  return bg;
}

/** Draws the ball centred at (cx, cy): a sphere lit from the top left, its edge anti-aliased. */
function drawBall(frame: Uint8Array, size: number, cx: number, cy: number): void {
  const r = BALL_RADIUS;
  for (let y = Math.max(0, Math.floor(cy - r - 1)); y <= Math.min(size - 1, Math.ceil(cy + r + 1)); y++) {
    for (let x = Math.max(0, Math.floor(cx - r - 1)); x <= Math.min(size - 1, Math.ceil(cx + r + 1)); x++) {
      const dx = x - cx;
      const dy = y - cy;
      const cover = Math.min(1, Math.max(0, r + 0.5 - Math.hypot(dx, dy)));
      if (cover === 0) continue;
      const shade = 255 * Math.max(0.15, 1 - Math.hypot(dx + r / 3, dy + r / 3) / (1.6 * r));
      const i = (y * size + x) * 3;
      for (let k = 0; k < 3; k++) frame[i + k] = Math.round(cover * shade + (1 - cover) * frame[i + k]!);
    }
  }
}

/** The ball's centre in every frame: a random start and heading, reflected at the edges. */
export function ballPath(o: SpeedClipOptions): { x: number; y: number }[] {
  const size = o.size ?? 224;
  const rand = seededRandom(o.seed);
  const lo = BALL_RADIUS;
  const hi = size - BALL_RADIUS;
  let x = lo + rand() * (hi - lo);
  let y = lo + rand() * (hi - lo);
  const angle = rand() * 2 * Math.PI;
  const phase = Math.floor(rand() * o.rhythm.length);
  let vx = STEP * Math.cos(angle);
  let vy = STEP * Math.sin(angle);
  const path: { x: number; y: number }[] = [];
  for (let t = 0; t < o.frames; t++) {
    path.push({ x, y });
    if (!o.rhythm[(t + phase) % o.rhythm.length]) continue;
    x += vx;
    y += vy;
    if (x < lo || x > hi) {
      vx = -vx;
      x = x < lo ? 2 * lo - x : 2 * hi - x;
    }
    if (y < lo || y > hi) {
      vy = -vy;
      y = y < lo ? 2 * lo - y : 2 * hi - y;
    }
  }
  return path;
}

/** Writes one clip (H.264 in mp4) of the ball stepping in `rhythm`. */
export async function writeSpeedClip(path: string, o: SpeedClipOptions): Promise<void> {
  const size = o.size ?? 224;
  const bg = background(size, seededRandom(o.seed ^ 0x5eed));
  const ff = spawn(
    'ffmpeg',
    [
      ...['-v', 'error', '-nostdin', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${size}x${size}`, '-r', String(o.fps ?? 10), '-i', '-'],
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-pix_fmt', 'yuv420p', '-threads', '1', '-fflags', '+bitexact', path],
    ],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let err = '';
  ff.stderr.on('data', (b: Buffer) => (err += b));
  const done = new Promise<void>((ok, fail) => {
    ff.on('error', fail);
    ff.on('close', (code) => (code === 0 ? ok() : fail(new Error(`ffmpeg could not write ${path} (exit ${code}): ${err}`))));
  });
  for (const { x, y } of ballPath(o)) {
    const frame = Uint8Array.from(bg);
    drawBall(frame, size, x, y);
    if (!ff.stdin.write(frame)) await new Promise((r) => ff.stdin.once('drain', r));
  }
  ff.stdin.end();
  await done;
}

export interface SpeedDatasetOptions {
  out: string;
  clipsPerClass: number;
  seed: number;
  /** Frames per clip (default 60: 6 s at 10 fps). */
  frames?: number;
}

/** A folder-per-class dataset: <out>/<class>/clip_NNN.mp4, every clip its own start, heading and background phase. */
export async function speedDataset(o: SpeedDatasetOptions): Promise<{ path: string; label: SpeedClass }[]> {
  const clips: { path: string; label: SpeedClass }[] = [];
  for (const [c, label] of SPEED_CLASSES.entries()) {
    await mkdir(join(o.out, label), { recursive: true });
    for (let i = 0; i < o.clipsPerClass; i++) {
      const path = join(o.out, label, `clip_${String(i).padStart(3, '0')}.mp4`);
      await writeSpeedClip(path, { rhythm: SPEEDS[label], frames: o.frames ?? 60, seed: o.seed * 10_000 + c * 1000 + i });
      clips.push({ path, label });
    }
  }
  return clips;
}
