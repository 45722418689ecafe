// On-device benchmark: the live view's `where: this device` in headless Chromium (whichever tfjs
// backend it picks, or --backend) next to the server's frame-to-label latency, in one run, on the
// same bundle and the same webcam clip (testsrc2, 640x480, as a fake camera / decoded frames).
// Rounds interleave the two sides (the machine's speed drifts); figures are medians over rounds.
//
//   node --import tsx scripts/bench-device.ts [--model DIR] [--embedder ID] [--seconds 15] [--rounds 2] [--backend wasm]
//
// Device: per frame, embed + head in the page (ms), and capture to label (canvas capture included).
// Server: a Node client sends the clip's 224x224 rgb24 frames at the bundle's fps, one at a time
// when answered (as the browser app does), and measures send to label on its clock (loopback).
// Without --model, a seeded untrained head (LSTM, H=128) is saved to a temp bundle: speed does not
// depend on what the head learned.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { ensureBackend } from '../models/backend.ts';
import { embedderInfo } from '../models/registry.ts';
import { createHead, saveBundle } from '../models/recurrent/index.ts';
import { decodeFrames } from '../pipeline/decode.ts';
import type { LabelMessage } from '../server/protocol.ts';
import { connectLive } from '../server/ws-client.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    embedder: { type: 'string', default: 'mobilenet_v1_0.25_224' },
    seconds: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '2' },
    backend: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const FPS = 10;
const work = mkdtempSync(join(tmpdir(), 'framewise-bench-device-'));
const run = promisify(execFile);
const q = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]! : NaN);
const median = (xs: number[]) => q(xs, 0.5);

async function makeBundle(): Promise<string> {
  const info = embedderInfo(values.embedder!);
  const dir = join(work, 'bundle');
  await ensureBackend();
  const head = createHead({ inputDim: info.dim, classes: 3, cell: 'lstm', hidden: 128, seed: 1 });
  await saveBundle(dir, head, { classes: ['a', 'b', 'c'], embedderId: info.id, fps: FPS, crop: 'center' });
  head.dispose();
  return dir;
}

async function startServer(bundle: string): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/framewise.js'), 'serve', '--model', bundle, '--port', '0', '--teach-dir', join(work, 'teach')], {
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

interface DeviceRound {
  backend: string;
  ms: number[];
  latency: number[];
  labelsPerSecond: number;
}

async function deviceRound(url: string, camera: string): Promise<DeviceRound> {
  const browser = await chromium.launch({
    executablePath: values.chromium,
    headless: true,
    args: [
      '--no-sandbox',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`,
      '--disable-background-networking',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${url}/?where=device&trace${values.backend ? `&backend=${values.backend}` : ''}#live`);
    await page.waitForSelector('#conn-status.ok', { timeout: 30_000 });
    await page.click('#live-start');
    await page.waitForFunction(() => (window as unknown as { framewiseTimes: unknown[] }).framewiseTimes.length > 10, undefined, { timeout: 120_000 });
    const t0 = Date.now();
    const n0 = await page.evaluate(() => (window as unknown as { framewiseTimes: unknown[] }).framewiseTimes.length);
    await page.waitForTimeout(seconds * 1000);
    const times = await page.evaluate(() => (window as unknown as { framewiseTimes: { ms: number; latencyMs: number }[] }).framewiseTimes);
    const backend = ((await page.locator('#live-backend').textContent()) ?? '').replace(' (this device)', '');
    const steady = times.slice(n0);
    return { backend, ms: steady.map((t) => t.ms), latency: steady.map((t) => t.latencyMs), labelsPerSecond: steady.length / ((Date.now() - t0) / 1000) };
  } finally {
    await browser.close();
  }
}

async function serverRound(url: string, frames: Uint8Array[]): Promise<{ latency: number[]; serverMs: number[] }> {
  const c = await connectLive(url, 'bench-device');
  const latency: number[] = [];
  const serverMs: number[] = [];
  try {
    const end = performance.now() + seconds * 1000;
    for (let index = 0; performance.now() < end; index++) {
      const tick = performance.now();
      const sent = performance.timeOrigin + performance.now();
      c.sendFrame({ index, timestampMs: sent }, frames[index % frames.length]!);
      const m = await c.next<LabelMessage>((x) => x.type === 'label' && x.index === index, 10_000);
      latency.push(performance.timeOrigin + performance.now() - sent);
      serverMs.push(m.serverMs ?? NaN);
      const wait = 1000 / FPS - (performance.now() - tick);
      if (wait > 0) await new Promise((ok) => setTimeout(ok, wait));
    }
  } finally {
    await c.close();
  }
  return { latency, serverMs };
}

async function main(): Promise<void> {
  const bundle = values.model ?? (await makeBundle());
  const camera = join(work, 'camera.y4m');
  const clip = join(work, 'camera.mp4');
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x480:rate=15:duration=4', '-pix_fmt', 'yuv420p', camera]);
  await run('ffmpeg', ['-v', 'error', '-y', '-i', camera, '-pix_fmt', 'yuv420p', clip]);
  const frames: Uint8Array[] = [];
  for await (const f of decodeFrames(clip, { size: 224, fps: FPS })) frames.push(f.rgb);
  const { url, proc } = await startServer(bundle);
  const device: DeviceRound[] = [];
  const server: { latency: number[]; serverMs: number[] }[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      device.push(await deviceRound(url, camera));
      server.push(await serverRound(url, frames));
      process.stderr.write(
        `round ${r + 1}/${rounds}: device ${median(device[r]!.ms).toFixed(1)} ms/frame (${device[r]!.backend}), server ${median(server[r]!.latency).toFixed(1)} ms frame-to-label\n`,
      );
    }
  } finally {
    proc.kill('SIGTERM');
  }
  const m = (xs: number[]) => median(xs).toFixed(1);
  const dev = (f: (d: DeviceRound) => number) => m(device.map(f));
  const srv = (f: (s: { latency: number[]; serverMs: number[] }) => number) => m(server.map(f));
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const lines = [
    `embedder ${embedderInfo(values.embedder!).id}, head LSTM H=${values.model ? '(bundle)' : 128}, ${FPS} fps, ${rounds} round(s) of ${seconds} s, ${cpu} x ${cpus().length}`,
    '',
    '| | p50 | p95 |',
    '|---|---|---|',
    `| on the device (${[...new Set(device.map((d) => d.backend))].join('/')}), embed + head per frame | ${dev((d) => q(d.ms, 0.5))} ms | ${dev((d) => q(d.ms, 0.95))} ms |`,
    `| on the device, capture to label | ${dev((d) => q(d.latency, 0.5))} ms | ${dev((d) => q(d.latency, 0.95))} ms |`,
    `| server, frame to label (loopback socket, client clock) | ${srv((s) => q(s.latency, 0.5))} ms | ${srv((s) => q(s.latency, 0.95))} ms |`,
    `| server, receipt to label inside the server | ${srv((s) => q(s.serverMs, 0.5))} ms | ${srv((s) => q(s.serverMs, 0.95))} ms |`,
    '',
    `device labels/s at the bundle's ${FPS} fps: ${dev((d) => d.labelsPerSecond)}; device ms per frame / server frame-to-label (medians of per-round ratios): ${m(device.map((d, i) => q(d.ms, 0.5) / q(server[i]!.latency, 0.5)))}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(work, { recursive: true, force: true }));
