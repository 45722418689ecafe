// Shared set-up of the server and browser tests: the fastest embedder, a small head, decoded
// frames of generated clips, and a tiny trained bundle that tells SMPTE bars from black.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadEmbedder, type Embedder } from '../../models/embedder.ts';
import { createHead, createTrainer, SeededRandom, type RecurrentHead } from '../../models/recurrent/index.ts';
import { decodeFrames } from '../../pipeline/decode.ts';
import type { Frame } from '../../core/types.ts';
import type { LoadedModel } from '../../server/server.ts';
import { MODELS_DIR } from '../helpers/real-models.ts';

const run = promisify(execFile);

export const TEST_EMBEDDER = 'mobilenet_v1_0.25_224';

export function loadTestEmbedder(): Promise<Embedder> {
  return loadEmbedder({ id: TEST_EMBEDDER, modelsDir: MODELS_DIR, allowDownload: false });
}

/**
 * An untrained but deterministic head (seeded init): enough to check ordering and state. It runs
 * at the source rate (fps null), so every frame a test sends reaches the head: the protocol and
 * latest-wins tests send made-up timestamps (resampling is tested on its own).
 */
export function testModel(embedder: Embedder, classes = ['a', 'b', 'c']): LoadedModel {
  const head = createHead({ inputDim: embedder.dim, classes: classes.length, cell: 'lstm', hidden: 16, seed: 7 });
  return { embedder, head, meta: { classes, embedderId: embedder.id, fps: null, crop: 'center' } };
}

/** All frames of a clip at the model's input size. */
export async function decodeAll(path: string, fps?: number): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of decodeFrames(path, { size: 224, ...(fps ? { fps } : {}) })) out.push(f);
  return out;
}

/** Runs ffmpeg with lavfi inputs; `args` go after the global options. */
export async function ffmpeg(args: string[]): Promise<void> {
  await run('ffmpeg', ['-hide_banner', '-v', 'error', '-nostdin', '-y', ...args], { maxBuffer: 16 * 1024 * 1024 });
}

/** A clip of consecutive parts, each SMPTE bars or black, e.g. [['bars', 2], ['off', 2]]. */
export async function barsClip(
  out: string,
  parts: ['bars' | 'off', number][],
  o: { fps: number; width?: number; height?: number; codec?: string[] },
): Promise<string> {
  const size = `${o.width ?? 320}x${o.height ?? 240}`;
  const inputs = parts.flatMap(([kind, sec]) => [
    '-f',
    'lavfi',
    '-i',
    kind === 'bars' ? `smptebars=size=${size}:rate=${o.fps}:duration=${sec}` : `color=c=black:size=${size}:rate=${o.fps}:duration=${sec}`,
  ]);
  const concat = parts.map((_, i) => `[${i}:v]`).join('') + `concat=n=${parts.length}:v=1:a=0,format=yuv420p[v]`;
  await ffmpeg([...inputs, '-filter_complex', concat, '-map', '[v]', ...(o.codec ?? ['-c:v', 'libvpx', '-b:v', '1M', '-deadline', 'realtime']), out]);
  return out;
}

/**
 * A 2-class head (['bars', 'off']) trained on embeddings of a bars clip and a black clip, on
 * sequences that switch between the two at random, so it also learns to switch quickly.
 */
export async function trainBarsHead(embedder: Embedder, dir: string): Promise<RecurrentHead> {
  const bars = await barsClip(join(dir, 'train-bars.mkv'), [['bars', 2]], { fps: 10, codec: ['-c:v', 'ffv1'] });
  const off = await barsClip(join(dir, 'train-off.mkv'), [['off', 2]], { fps: 10, codec: ['-c:v', 'ffv1'] });
  const pools = await Promise.all([bars, off].map(async (p) => embedder.embed(await decodeAll(p))));
  const head = createHead({ inputDim: embedder.dim, classes: 2, cell: 'lstm', hidden: 16, dropout: 0, seed: 3 });
  const B = 4;
  const k = 12;
  const trainer = createTrainer(head, { batch: B, schedule: { learningRate: 1e-2 } });
  const rng = new SeededRandom(5);
  const D = embedder.dim;
  // Each slot runs segments of 3..8 frames of one class, so the carried state sees many switches.
  const slots = Array.from({ length: B }, () => ({ cls: 0, left: 0 }));
  try {
    for (let step = 0; step < 120; step++) {
      const inputs = new Float32Array(B * k * D);
      const labels = new Int32Array(B * k);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < k; t++) {
          const s = slots[b]!;
          if (s.left === 0) {
            s.cls = rng.int(2);
            s.left = 3 + rng.int(6);
          }
          s.left -= 1;
          const pool = pools[s.cls]!;
          inputs.set(pool[rng.int(pool.length)]!, (b * k + t) * D);
          labels[b * k + t] = s.cls;
        }
      }
      trainer.step({ steps: k, inputs, labels });
    }
  } finally {
    trainer.dispose();
  }
  return head;
}
