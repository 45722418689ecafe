// Live benchmark: N simulated webcam clients at 15 fps each against one `framewise serve` process
// (a child process, so the clients' own work does not load the server's event loop). Each client
// behaves like the browser app: frames scaled to the model input, at most `maxInFlight` frames
// unanswered (a capture tick with that many outstanding is skipped). Prints, per N: frame-to-label
// latency p50/p95/p99 (capture to label, on the client's clock), processed and dropped fps, and
// the server's RSS.
//
//   node --import tsx scripts/bench-live.ts [--model DIR] [--clients 1,2,4] [--seconds 20] [--fps 15]
//   node --import tsx scripts/bench-live.ts --overload [--seconds 60]   (one client, open loop at 3x)
//
// Without --model, a seeded untrained head on mobilenet_v1_0.25_224 is saved to a temp bundle:
// latency does not depend on what the head learned.
import { requireBinary } from '../pipeline/probe.ts';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { ensureBackend } from '../models/backend.ts';
import { embedderInfo } from '../models/registry.ts';
import { createHead, saveBundle } from '../models/recurrent/index.ts';
import { decodeFrames } from '../pipeline/decode.ts';
import type { LabelMessage, StatsMessage } from '../server/protocol.ts';
import { connectLive, type LiveClient } from '../server/ws-client.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    clients: { type: 'string', default: '1,2,4' },
    seconds: { type: 'string' },
    fps: { type: 'string', default: '15' },
    embedder: { type: 'string', default: 'mobilenet_v1_0.25_224' },
    overload: { type: 'boolean', default: false },
  },
});
const fps = Number(values.fps);
const seconds = Number(values.seconds ?? (values.overload ? 60 : 20));
const work = mkdtempSync(join(tmpdir(), 'framewise-bench-live-'));
const now = () => performance.timeOrigin + performance.now();
const q = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]! : NaN);

async function makeBundle(): Promise<string> {
  const info = embedderInfo(values.embedder!);
  const dir = join(work, 'bundle');
  await ensureBackend(); // the head's weights go on the chosen backend, not tfjs' default cpu
  const head = createHead({ inputDim: info.dim, classes: 3, cell: 'lstm', hidden: 128, seed: 1 });
  await saveBundle(dir, head, { classes: ['a', 'b', 'c'], embedderId: info.id, fps: 15, crop: 'center' });
  head.dispose();
  return dir;
}

async function makeFrames(): Promise<Uint8Array[]> {
  const clip = join(work, 'webcam.mp4');
  await promisify(execFile)(requireBinary('ffmpeg'), [
    '-v',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=640x480:rate=15:duration=2',
    '-pix_fmt',
    'yuv420p',
    clip,
  ]);
  const out: Uint8Array[] = [];
  for await (const f of decodeFrames(clip, { size: 224 })) out.push(f.rgb);
  return out;
}

async function startServer(bundle: string): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/framewise.js'), 'serve', '--model', bundle, '--port', '0', '--max-sessions', '16'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: process.env,
  });
  let log = '';
  const url = await new Promise<string>((ok, fail) => {
    proc.stderr!.on('data', (b: Buffer) => {
      log += b;
      const m = /open (http:\/\/[^\s/]+)\//.exec(log);
      if (m) ok(m[1]!);
    });
    proc.on('exit', (code) => fail(new Error(`server exited (${code}):\n${log}`)));
  });
  return { url, proc };
}

interface ClientResult {
  latencies: number[];
  /** Receipt to label inside the server. */
  serverMs: number[];
  labels: number;
  dropped: number;
  skipped: number;
  sent: number;
  rss: number[];
}

/** One webcam-like client for `ms`: ticks at `rate`, skips a tick while maxInFlight frames are unanswered. */
async function runClient(c: LiveClient, frames: Uint8Array[], rate: number, ms: number, limitInFlight: boolean): Promise<ClientResult> {
  const r: ClientResult = { latencies: [], serverMs: [], labels: 0, dropped: 0, skipped: 0, sent: 0, rss: [] };
  const inFlight = new Set<number>();
  c.onMessage((m) => {
    if (m.type === 'label') {
      inFlight.delete(m.index);
      r.labels++;
      r.latencies.push(now() - (m as LabelMessage).timestampMs);
      r.serverMs.push((m as LabelMessage).serverMs ?? NaN);
    } else if (m.type === 'dropped') {
      for (const i of m.frames) inFlight.delete(i);
      r.dropped += m.count;
    } else if (m.type === 'stats') {
      r.rss.push((m as StatsMessage).rssBytes);
    }
  });
  const limit = c.welcome.limits.maxInFlight;
  const start = now();
  let index = 0;
  await new Promise<void>((done) => {
    // Each client starts at a random phase, as independent webcams would.
    setTimeout(
      () => {
        const timer = setInterval(() => {
          if (now() - start >= ms) {
            clearInterval(timer);
            done();
            return;
          }
          if (limitInFlight && inFlight.size >= limit) {
            r.skipped++;
            return;
          }
          inFlight.add(index);
          c.sendFrame({ index, timestampMs: now() }, frames[index % frames.length]!);
          index++;
          r.sent++;
        }, 1000 / rate);
      },
      Math.random() * (1000 / rate),
    );
  });
  // Let the last answers arrive.
  await new Promise((ok) => setTimeout(ok, 1000));
  return r;
}

async function main(): Promise<void> {
  const bundle = values.model ?? (await makeBundle());
  const frames = await makeFrames();
  const { url, proc } = await startServer(bundle);
  const lines: string[] = [];
  try {
    if (values.overload) {
      const c = await connectLive(url, 'bench');
      let serverMs: number[] = [];
      for (let i = 0; i < 20; i++) {
        c.sendFrame({ index: i, timestampMs: now() }, frames[i % frames.length]!);
        serverMs.push((await c.next<LabelMessage>((m) => m.type === 'label' && m.index === i)).serverMs!);
      }
      serverMs = serverMs.slice(5);
      const rate = 3 * (1000 / q(serverMs, 0.5));
      await c.close();
      const c2 = await connectLive(url, 'bench');
      const r = await runClient(c2, frames, rate, seconds * 1000, false);
      await c2.close();
      const rssMb = r.rss.map((b) => b / 1e6);
      lines.push(
        `overload ${seconds}s at ${rate.toFixed(0)} fps (3x a ${q(serverMs, 0.5).toFixed(1)} ms service): sent ${r.sent}, labeled ${r.labels}, dropped ${r.dropped}, ` +
          `latency p50 ${q(r.latencies, 0.5).toFixed(0)} p95 ${q(r.latencies, 0.95).toFixed(0)} p99 ${q(r.latencies, 0.99).toFixed(0)} ms, ` +
          `server RSS first ${rssMb[2]?.toFixed(0)} MB, max ${Math.max(...rssMb.slice(2)).toFixed(0)} MB, last ${rssMb.at(-1)?.toFixed(0)} MB`,
      );
    } else {
      // Warm-up (first calls of the model are slow), not counted.
      const warm = await connectLive(url, 'bench');
      await runClient(warm, frames, fps, 2000, true);
      await warm.close();
      lines.push(`live bench: ${values.embedder ?? 'bundle'}, ${fps} fps per client, ${seconds} s per run, client in-flight limit from the server`);
      lines.push('clients  lat p50   p95    p99   (in server p50/p95)  processed fps  dropped fps  skipped fps  server RSS');
      for (const n of values.clients!.split(',').map(Number)) {
        const fresh = await Promise.all(Array.from({ length: n }, () => connectLive(url, 'bench')));
        const results = await Promise.all(fresh.map((c) => runClient(c, frames, fps, seconds * 1000, true)));
        await Promise.all(fresh.map((c) => c.close()));
        const lat = results.flatMap((r) => r.latencies);
        const srv = results.flatMap((r) => r.serverMs);
        const sum = (k: 'labels' | 'dropped' | 'skipped') => results.reduce((a, r) => a + r[k], 0) / seconds;
        const rss = Math.max(...results.flatMap((r) => r.rss)) / 1e6;
        lines.push(
          `${String(n).padStart(7)}  ${q(lat, 0.5).toFixed(0).padStart(4)} ms ${q(lat, 0.95).toFixed(0).padStart(4)} ms ${q(lat, 0.99).toFixed(0).padStart(4)} ms ` +
            `(${q(srv, 0.5).toFixed(0).padStart(4)} / ${q(srv, 0.95).toFixed(0).padStart(4)} ms)      ` +
            `${sum('labels').toFixed(1).padStart(12)}  ${sum('dropped').toFixed(2).padStart(11)}  ${sum('skipped').toFixed(2).padStart(11)}  ${rss.toFixed(0).padStart(6)} MB`,
        );
        process.stdout.write(lines.at(-1) + '\n');
      }
    }
  } finally {
    proc.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write('\n' + lines.join('\n') + '\n');
}

await main();
