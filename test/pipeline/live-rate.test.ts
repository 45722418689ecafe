// Live at the trained rate: frames streamed at the camera's rate are resampled to the bundle's fps
// by their timestamps, so the live head sees exactly the frames offline `label` feeds it (ffmpeg's
// fps filter) and its labels equal the offline labels of the same frames. Also the rule itself on
// made-up timestamps, and a bundle that runs at the source rate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import { loadBundle, type BundleMeta } from '../../models/recurrent/bundle.ts';
import { createHead, type RecurrentHead } from '../../models/recurrent/head.ts';
import { featureDim } from '../../models/motion.ts';
import { decodeFrames } from '../../pipeline/decode.ts';
import { FpsResampler } from '../../pipeline/fps-resampler.ts';
import { LiveScheduler, type LiveResult, type PendingFrame } from '../../pipeline/live-scheduler.ts';
import { labelVideo } from '../../pipeline/run-label.ts';
import type { DropReason } from '../../core/live-frame.ts';
import { loadTestEmbedder } from '../server/fixtures.ts';
import { trainedBundle } from '../helpers/trained-bundle.ts';
import { makeClip, tmpDir, type TmpDir } from '../helpers/video.ts';

describe('FpsResampler (the fps filter rule)', () => {
  const ticks = (fps: number, times: number[]) => {
    const r = new FpsResampler<{ timestampMs: number; i: number }>(fps);
    const out: string[] = [];
    times.forEach((t, i) => {
      const d = r.push({ timestampMs: t, i });
      if (d.skipped) out.push(`skip ${d.skipped.i}`);
      if (d.ready) out.push(`${d.ready.frame.i}+${d.ready.gap}`);
    });
    const last = r.flush();
    if (last) out.push(`${last.frame.i}+${last.gap}`);
    return out;
  };

  test('30 fps to 10: ticks take frames 1, 4, 7 (the latest at or before each tick, rounded to the nearest)', () => {
    const out = ticks(
      10,
      Array.from({ length: 9 }, (_, i) => (i * 1000) / 30),
    );
    expect(out.filter((s) => !s.startsWith('skip'))).toEqual(['1+0', '4+0', '7+0', '8+0']);
    expect(out.filter((s) => s.startsWith('skip'))).toEqual(['skip 0', 'skip 2', 'skip 3', 'skip 5', 'skip 6']);
  });

  test('5 fps to 10: every frame, each followed by one repeated tick; a late frame of a decided tick is skipped', () => {
    expect(ticks(10, [0, 200, 400, 600])).toEqual(['0+0', '1+1', '2+1', '3+1']);
    const r = new FpsResampler<{ timestampMs: number }>(10);
    r.push({ timestampMs: 0 });
    r.flush();
    expect(r.push({ timestampMs: 20 }).skipped).toEqual({ timestampMs: 20 });
  });

  test('null fps passes every frame through', () => {
    const r = new FpsResampler<{ timestampMs: number }>(null);
    expect(r.push({ timestampMs: 5 })).toEqual({ ready: { frame: { timestampMs: 5 }, gap: 0 } });
  });
});

describe('live labels equal offline labels at the bundle rate', () => {
  let dir: TmpDir;
  let embedder: Embedder;
  let head: RecurrentHead;
  let meta: BundleMeta;
  let motionHead: RecurrentHead | undefined;
  type Model = { head: RecurrentHead; meta: BundleMeta };

  beforeAll(async () => {
    dir = tmpDir('framewise-live-rate-');
    const fx = await trainedBundle();
    embedder = await loadTestEmbedder();
    ({ head, meta } = await loadBundle(fx.bundle));
  });

  afterAll(() => {
    head?.dispose();
    motionHead?.dispose();
    embedder?.dispose();
    dir?.cleanup();
  });

  /**
   * Streams every frame of `clip` through a scheduler at `fps` without drops: a frame is sent once
   * the frames before it are answered, except the one the resampler holds (decided by the next).
   */
  async function live(clip: string, fps: number | null, m: Model = { head, meta }) {
    const scheduler = new LiveScheduler({ embedder, head: m.head, classes: m.meta.classes, fps, features: m.meta.features, maxBatch: 4, holdGraceMs: 60_000 });
    const labels = new Map<number, LiveResult>();
    const drops: { frames: number[]; reason: DropReason }[] = [];
    const answered = new Set<number>();
    let wake: (() => void) | undefined;
    const stream = scheduler.open('s', {
      onLabel: (l) => {
        labels.set(l.index, l);
        answered.add(l.index);
        wake?.();
      },
      onDropped: (frames, reason) => {
        drops.push({ frames, reason });
        frames.forEach((f) => answered.add(f));
        wake?.();
      },
      onError: (e) => {
        throw e;
      },
    });
    const sent: { index: number; timestampMs: number }[] = [];
    const held = fps === null ? 0 : 1;
    const waiting = () => sent.slice(0, sent.length - held).some((s) => !answered.has(s.index));
    for await (const f of decodeFrames(clip, { size: embedder.inputSize, crop: meta.crop })) {
      while (waiting()) await new Promise<void>((r) => (wake = r));
      const frame: PendingFrame = { index: f.index, timestampMs: f.timestampMs, format: 'rgb24', payload: f.rgb, receivedAt: performance.now() };
      stream.submit(frame);
      sent.push(f);
    }
    while (waiting()) await new Promise<void>((r) => (wake = r));
    await scheduler.idle();
    stream.close();
    return { labels, drops, sent };
  }

  async function offline(clip: string, fps: number | null, name: string, m: Model = { head, meta }) {
    const out = join(dir.path, name);
    await labelVideo({ model: { head: m.head, embedder, meta: { ...m.meta, fps } }, input: clip, name, outDir: out, formats: ['jsonl'] });
    return readFileSync(join(out, `${name}.frames.jsonl`), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; probs: Record<string, number> });
  }

  test.each([
    [30, 'appearance'],
    [15, 'appearance'],
    [30, 'appearance+motion'],
  ] as const)(
    'a %i fps clip streamed at its rate (%s): labels of the frames ffmpeg picks at 10 fps (1e-4)',
    async (rate, features) => {
      expect(meta.fps).toBe(10);
      const m = features === 'appearance' ? { head, meta } : motionModel();
      const clip = await makeClip({ durationSec: 3, fps: rate, width: 320, height: 240, dir: dir.path });
      const [got, ref] = await Promise.all([live(clip, meta.fps, m), offline(clip, meta.fps, `clip${rate}-${features}`, m)]);
      expect(got.drops.every((d) => d.reason === 'resampled')).toBe(true);
      const t0 = got.sent[0]!.timestampMs;
      const tickOf = (t: number) => Math.round(((t - t0) * meta.fps!) / 1000);
      // Each labeled frame is the latest one of its tick; its label is the offline label of that tick.
      let compared = 0;
      for (const [index, l] of got.labels) {
        const k = tickOf(l.timestampMs);
        const latest = got.sent.filter((s) => tickOf(s.timestampMs) <= k).at(-1)!;
        expect(latest.index).toBe(index);
        if (k >= ref.length) continue; // offline stops at the clip's end
        meta.classes.forEach((c, j) => expect(l.probs[j]!).toBeCloseTo(ref[k]!.probs[c]!, 4));
        compared++;
      }
      expect(compared).toBeGreaterThanOrEqual(ref.length - 1);
      // Every frame but the last (held for the next frame that never comes) is answered once.
      expect(got.labels.size + got.drops.flatMap((d) => d.frames).length).toBe(got.sent.length - 1);
    },
    240_000,
  );

  /** A seeded head that takes the motion stream too (weights random: what is compared is the path, not the training). */
  function motionModel(): Model {
    const features = 'appearance+motion' as const;
    motionHead ??= createHead({ inputDim: featureDim(embedder.dim, features), classes: meta.classes.length, hidden: 32, seed: 3, inputNorm: 0.05 });
    return { head: motionHead, meta: { ...meta, features } };
  }

  test('a bundle at the source rate takes every frame, as offline does', async () => {
    const clip = await makeClip({ durationSec: 2, fps: 15, width: 320, height: 240, dir: dir.path });
    const [got, ref] = await Promise.all([live(clip, null), offline(clip, null, 'source')]);
    expect(got.drops).toEqual([]);
    expect(got.labels.size).toBe(ref.length);
    for (const [index, l] of got.labels) meta.classes.forEach((c, j) => expect(l.probs[j]!).toBeCloseTo(ref[index]!.probs[c]!, 4));
  }, 240_000);
});
