// The shared live loop with a fake embedder (deterministic, instant control over timing) and a
// real small head: batching across sessions, round-robin fairness, latest-wins drops, resets.
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, test } from 'vitest';
import type { Embedder, RgbImage } from '../../models/embedder.ts';
import { createHead } from '../../models/recurrent/index.ts';
import { LiveScheduler, type LiveResult, type PendingFrame } from '../../pipeline/live-scheduler.ts';
import type { DropReason } from '../../server/protocol.ts';

const S = 4; // tiny "model input" side
const D = 6;

/** Embeds a frame as a few of its pixel values scaled; each call waits for `release()` when gated. */
function fakeEmbedder() {
  const calls: number[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const e: Embedder & { calls: number[]; hold(): void; release(): void } = {
    id: 'fake',
    dim: D,
    inputSize: S,
    calls,
    async embed(frames: readonly RgbImage[]) {
      calls.push(frames.length);
      if (gate) await gate;
      return frames.map((f) => Float32Array.from({ length: D }, (_, i) => f.rgb[i]! / 255));
    },
    async classify() {
      return [];
    },
    dispose() {},
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      gate = undefined;
      open?.();
    },
  };
  return e;
}

const CLASSES = ['a', 'b', 'c'];
const head = createHead({ inputDim: D, classes: CLASSES.length, cell: 'gru', hidden: 5, seed: 11 });
afterAll(() => head.dispose());

function frame(index: number, value: number): PendingFrame {
  return { index, timestampMs: index * 100, format: 'rgb24', payload: new Uint8Array(S * S * 3).fill(value), receivedAt: performance.now() };
}

function collector() {
  const labels: LiveResult[] = [];
  const drops: { frames: number[]; reason: DropReason }[] = [];
  const errors: string[] = [];
  return {
    labels,
    drops,
    errors,
    cb: {
      onLabel: (r: LiveResult) => labels.push(r),
      onDropped: (frames: number[], reason: DropReason) => drops.push({ frames, reason }),
      onError: (e: Error) => errors.push(e.message),
    },
  };
}

describe('LiveScheduler', () => {
  test('frames of several sessions go through one embed call and one batched head step, each with its own state', async () => {
    const emb = fakeEmbedder();
    const sched = new LiveScheduler({ embedder: emb, head, classes: CLASSES, fps: null, maxBatch: 8 });
    const a = collector();
    const b = collector();
    const sa = sched.open('a', a.cb);
    const sb = sched.open('b', b.cb);
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      sa.submit(frame(i, 10 + i));
      sb.submit(frame(i, 200 - i));
      await sched.idle();
      await new Promise((r) => setImmediate(r));
      await sched.idle();
    }
    expect(emb.calls).toEqual([2, 2, 2, 2, 2]);
    // Each session's results equal running its frames alone through the head.
    const alone = (vals: number[]) => head.predict(vals.map((v) => Float32Array.from({ length: D }, () => v / 255)));
    const refA = alone([10, 11, 12, 13, 14]);
    const refB = alone([200, 199, 198, 197, 196]);
    expect(a.labels.map((l) => l.index)).toEqual([0, 1, 2, 3, 4]);
    a.labels.forEach((l, i) => expect(Array.from(l.probs)).toEqual(Array.from(refA[i]!).map((x) => expect.closeTo(x, 5))));
    b.labels.forEach((l, i) => expect(Array.from(l.probs)).toEqual(Array.from(refB[i]!).map((x) => expect.closeTo(x, 5))));
    expect(tf.memory().numTensors).toBe(tensors);
    sa.close();
    sb.close();
  });

  test('latest-wins: a newer frame replaces the pending one, which is reported as superseded', async () => {
    const emb = fakeEmbedder();
    const sched = new LiveScheduler({ embedder: emb, head, classes: CLASSES, fps: null, maxBatch: 8 });
    const c = collector();
    const s = sched.open('s', c.cb);
    emb.hold();
    s.submit(frame(0, 1)); // taken by the first round, which then waits on the gate
    await new Promise((r) => setImmediate(r));
    s.submit(frame(1, 2));
    s.submit(frame(2, 3)); // replaces 1
    s.submit(frame(3, 4)); // replaces 2
    emb.release();
    await sched.idle();
    expect(c.labels.map((l) => l.index)).toEqual([0, 3]);
    expect(c.drops).toEqual([
      { frames: [1], reason: 'superseded' },
      { frames: [2], reason: 'superseded' },
    ]);
    s.close();
  });

  test('round-robin: with more waiting sessions than maxBatch, the next round starts where the last one stopped', async () => {
    const emb = fakeEmbedder();
    const sched = new LiveScheduler({ embedder: emb, head, classes: CLASSES, fps: null, maxBatch: 2 });
    const cs = [collector(), collector(), collector()];
    const ss = cs.map((c, i) => sched.open(`s${i}`, c.cb));
    emb.hold();
    ss[0]!.submit(frame(0, 1));
    await new Promise((r) => setImmediate(r)); // round 1 takes s0 only and waits
    ss.forEach((s) => s.submit(frame(1, 5)));
    emb.release();
    await sched.idle();
    // Round 2 takes s1, s2 (after s0); round 3 takes s0's frame 1.
    expect(emb.calls).toEqual([1, 2, 1]);
    expect(cs.map((c) => c.labels.map((l) => l.index))).toEqual([[0, 1], [1], [1]]);
    ss.forEach((s) => s.close());
  });

  test('reset during a round: the frame in flight is dropped as reset and the state starts from zero', async () => {
    const emb = fakeEmbedder();
    const sched = new LiveScheduler({ embedder: emb, head, classes: CLASSES, fps: null, maxBatch: 8 });
    const c = collector();
    const s = sched.open('s', c.cb);
    s.submit(frame(0, 50));
    await sched.idle();
    await new Promise((r) => setImmediate(r));
    await sched.idle();
    emb.hold();
    s.submit(frame(1, 60));
    await new Promise((r) => setImmediate(r));
    s.reset();
    emb.release();
    await sched.idle();
    expect(c.drops).toEqual([{ frames: [1], reason: 'reset' }]);
    s.submit(frame(0, 70));
    await new Promise((r) => setImmediate(r));
    await sched.idle();
    const fresh = head.predict([Float32Array.from({ length: D }, () => 70 / 255)])[0]!;
    expect(Array.from(c.labels.at(-1)!.probs)).toEqual(Array.from(fresh).map((x) => expect.closeTo(x, 5)));
    s.close();
  });

  test('an undecodable JPEG is dropped as invalid with an E_PROTOCOL error; the others still get labels', async () => {
    const emb = fakeEmbedder();
    const sched = new LiveScheduler({ embedder: emb, head, classes: CLASSES, fps: null, maxBatch: 8 });
    const bad = collector();
    const good = collector();
    const sBad = sched.open('bad', bad.cb);
    const sGood = sched.open('good', good.cb);
    sBad.submit({ ...frame(0, 1), format: 'jpeg', payload: new Uint8Array([1, 2, 3, 4]) });
    sGood.submit(frame(0, 9));
    await new Promise((r) => setImmediate(r));
    await sched.idle();
    expect(bad.drops).toEqual([{ frames: [0], reason: 'invalid' }]);
    expect(bad.errors[0]).toMatch(/JPEG/);
    expect(good.labels).toHaveLength(1);
    sBad.close();
    sGood.close();
  });
});
