// Overload: a client sends frames at 3x the rate the server can label them. Latest-wins must keep
// latency bounded (no queue builds up), report every dropped frame, and keep memory flat. This is
// the short (~15 s) version; `node --import tsx scripts/bench-live.ts --overload` runs the minute-long one.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import type { Frame } from '../../core/types.ts';
import type { DroppedMessage, LabelMessage, StatsMessage } from '../../server/protocol.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { connectLive } from '../../server/ws-client.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';
import { decodeAll, loadTestEmbedder, testModel } from './fixtures.ts';

let embedder: Embedder;
let model: LoadedModel;
let server: RunningServer;
let frames: Frame[];
const dir = tmpDir('framewise-overload-');

beforeAll(async () => {
  embedder = await loadTestEmbedder();
  model = testModel(embedder);
  frames = await decodeAll(await makeClip({ durationSec: 1, fps: 10, width: 160, height: 120, dir: dir.path }));
  server = await createServer({ model, port: 0, clientDir: dir.path, jobsDir: dir.file('jobs') });
});

afterAll(async () => {
  await server?.close();
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

const now = () => performance.timeOrigin + performance.now();
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

test('3x the sustainable rate: bounded latency, every drop reported, flat memory', { timeout: 60_000 }, async () => {
  const c = await connectLive(server.url, 'overload');
  // Sustainable rate: the server's own time per frame (receipt to label) when frames come one at a time.
  const warm: number[] = [];
  for (let i = 0; i < 12; i++) {
    c.sendFrame({ index: i, timestampMs: now() }, frames[i % frames.length]!.rgb);
    warm.push((await c.next<LabelMessage>((m) => m.type === 'label' && m.index === i)).serverMs!);
  }
  const serviceMs = quantile(warm.slice(2), 0.5);
  const rate = Math.min(150, 3 * (1000 / serviceMs));
  c.messages.length = 0;

  const latencies: { at: number; ms: number }[] = [];
  let dropped = 0;
  c.onMessage((m) => {
    if (m.type === 'label') latencies.push({ at: now(), ms: now() - (m as LabelMessage).timestampMs });
    if (m.type === 'dropped') dropped += (m as DroppedMessage).count;
  });
  const tensors = tf.memory().numTensors;
  const rss: number[] = [];
  let index = 100;
  const start = now();
  const durationMs = 12_000;
  // Frames are sent on a fixed schedule, however the server is doing: an open-loop overload.
  await new Promise<void>((done) => {
    const period = 1000 / rate;
    let sent = 0;
    const tick = setInterval(() => {
      const due = Math.floor((now() - start) / period);
      while (sent < due) {
        c.sendFrame({ index: index++, timestampMs: now() }, frames[index % frames.length]!.rgb);
        sent++;
      }
      if (now() - start >= durationMs) {
        clearInterval(tick);
        done();
      }
    }, 5);
    const sampler = setInterval(() => {
      rss.push(process.memoryUsage.rss());
      if (now() - start >= durationMs) clearInterval(sampler);
    }, 1000);
  });
  const sent = index - 100;
  const last = index - 1;
  await c.next((m) => (m.type === 'label' || m.type === 'dropped') && m.index === last, 10_000);
  const labeled = latencies.length;

  // Every frame sent is either labeled or reported dropped, exactly once.
  expect(labeled + dropped).toBe(sent);
  expect(dropped).toBeGreaterThan(sent / 3);
  expect(labeled).toBeGreaterThan(sent / 10);
  // Latest-wins: a frame waits at most for the round in progress, then its own.
  const p95 = quantile(
    latencies.map((l) => l.ms),
    0.95,
  );
  expect(p95).toBeLessThan(6 * serviceMs + 250);
  // No backlog building up: the last third is not slower than the first third.
  const third = (k: number) => latencies.filter((l) => l.at >= start + (k * durationMs) / 3 && l.at < start + ((k + 1) * durationMs) / 3).map((l) => l.ms);
  expect(quantile(third(2), 0.5)).toBeLessThan(2 * quantile(third(0), 0.5) + 100);
  // Memory: flat after warm-up (frames are ~150 kB each; a queue would grow by MBs per second).
  const growth = Math.max(...rss.slice(3)) - rss[2]!;
  expect(growth).toBeLessThan(40 * 1024 * 1024);
  expect(tf.memory().numTensors).toBe(tensors);
  // The once-a-second stats agree with what the client counted.
  const stats = c.messages.filter((m) => m.type === 'stats').at(-1) as StatsMessage | undefined;
  expect(stats).toBeDefined();
  expect(stats!.dropped).toBeGreaterThan(0);
  expect(stats!.dropped).toBeLessThanOrEqual(dropped);
  console.log(
    `overload: service ${serviceMs.toFixed(1)} ms, sent ${sent} at ${rate.toFixed(0)} fps, labeled ${labeled}, dropped ${dropped}, ` +
      `latency p50 ${quantile(
        latencies.map((l) => l.ms),
        0.5,
      ).toFixed(0)} p95 ${p95.toFixed(0)} ms, rss growth ${(growth / 1e6).toFixed(1)} MB`,
  );
  await c.close();
});
