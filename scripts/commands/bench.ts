// `framewise bench`: throughput in one run, against the machine's own limits (issues 2, 4, 7).
// Prints numbers and ratios measured side by side, never asserts (it is not a test). Sections:
//   spine   (10 s clip): decode-only, embed-only on tfjs (this thread, batch 8) and decode+embed;
//   engines (60 s clip): per embedder, embed-only for wasm 1 worker, the wasm pool, ONNX Runtime
//           with 1 and 2 threads (and multiply-adds/s), end-to-end `label` with the auto engine;
//   rss     (--rss): peak RSS of `framewise label` on a 1-minute and a 10-minute clip.
// Clips are generated with ffmpeg's testsrc2 (640x480, 25 fps) into the OS temp folder and
// reused by later runs. Embed-only runs on pre-decoded frames; each call gets fresh copies
// (excluded from the time) because the pool takes ownership of the pixel buffers it is given.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { count, lastValueFrom, take, toArray } from 'rxjs';
import { ensureBackend, parseBackendRequest } from '../../models/backend.ts';
import { loadEmbedder, type Embedder } from '../../models/embedder.ts';
import { loadEmbeddingEngine, parseEngineRequest, parseWorkers, type EngineRequest } from '../../models/engine.ts';
import { createEmbeddingPool } from '../../models/pool/pool.ts';
import { FACTORIES_MODULE } from '../../models/pool/factories.ts';
import { loadBundle, saveBundle } from '../../models/recurrent/bundle.ts';
import { createHead } from '../../models/recurrent/head.ts';
import { embedderInfo } from '../../models/registry.ts';
import { modelsDirFromEnv } from '../../models/weights.ts';
import { decode, decodeThrough } from '../../pipeline/decode.ts';
import { DEFAULTS } from '../../pipeline/defaults.ts';
import { embed } from '../../pipeline/embed.ts';
import { ErrorCodes, FramewiseError } from '../../pipeline/errors.ts';
import { requireBinary } from '../../pipeline/probe.ts';
import { labelVideo } from '../../pipeline/run-label.ts';
import type { Frame } from '../../pipeline/types.ts';
import { bool, modelOptions, num, str, type CommandSpec } from '../command.ts';

const run = promisify(execFile);
const BIN = resolve(fileURLToPath(new URL('../../bin/framewise.js', import.meta.url)));
const ENGINE_ROWS = ['wasm1', 'pool', 'onnx1', 'onnx2'] as const;
type EngineRow = (typeof ENGINE_ROWS)[number];
const ROW_NAME: Record<EngineRow, string> = { wasm1: 'wasm 1 worker', pool: 'wasm pool', onnx1: 'onnx 1 thread', onnx2: 'onnx 2 threads' };

export const command: CommandSpec = {
  name: 'bench',
  summary: 'Measure decode, embed and end-to-end label throughput (and memory) on generated clips; prints a table.',
  options: {
    embedders: { type: 'string', valueName: 'IDS', default: 'mobilenet_v2_1.0_224,mobilenet_v1_0.25_224', description: 'comma-separated embedder ids' },
    engines: { type: 'string', valueName: 'LIST', default: ENGINE_ROWS.join(','), description: `embed-only rows: ${ENGINE_ROWS.join(', ')}` },
    seconds: { type: 'string', valueName: 'S', default: '60', description: 'length of the clip for the engine and end-to-end part' },
    'spine-seconds': { type: 'string', valueName: 'S', default: '10', description: 'length of the clip for decode-only / decode+embed (0 skips that part)' },
    'embed-seconds': { type: 'string', valueName: 'S', default: '4', description: 'least busy time per embed-only measurement' },
    quick: { type: 'boolean', description: 'short clips (10 s / 5 s) and 1.5 s per embed-only row, for a smoke run' },
    rss: { type: 'boolean', description: 'also compare peak RSS of `framewise label` on a 1-minute and a 10-minute clip (about 2-4 more minutes)' },
    'rss-embedder': { type: 'string', valueName: 'ID', default: 'mobilenet_v1_0.25_224', description: 'embedder for the RSS part' },
    ...modelOptions,
  },
  async run({ values, stdout, stderr }) {
    const say = (l: string) => stdout.write(l + '\n');
    const note = (l: string) => stderr.write(`  ${l}\n`);
    const quick = bool(values, 'quick');
    const ids = str(values, 'embedders')!.split(',').map((s) => s.trim()).filter(Boolean);
    ids.forEach((id) => embedderInfo(id));
    const rows = str(values, 'engines')!.split(',').map((s) => s.trim()) as EngineRow[];
    for (const r of rows) if (!ENGINE_ROWS.includes(r)) throw usage(`unknown --engines row "${r}": use ${ENGINE_ROWS.join(', ')}`);
    const seconds = quick ? 10 : num(values, 'seconds', 1, 3600)!;
    const spineSeconds = quick ? 5 : num(values, 'spine-seconds', 0, 3600)!;
    const embedSeconds = quick ? 1.5 : num(values, 'embed-seconds', 0.1, 600)!;
    const workers = parseWorkers(str(values, 'workers'));
    const engine = parseEngineRequest(str(values, 'engine'));
    const modelsDir = str(values, 'models-dir') ?? modelsDirFromEnv();
    const backendRequest = parseBackendRequest(str(values, 'backend') ?? process.env.FRAMEWISE_BACKEND);

    const backend = await ensureBackend(backendRequest);
    const cpu = cpus()[0]?.model.trim() ?? 'unknown cpu';
    const load0 = loadavg();
    say(`framewise bench: ${cpu}, ${cpus().length} cores (availableParallelism ${availableParallelism()}), node ${process.version}, tfjs backend ${backend.name}`);
    say(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')} (other processes on the machine lower every number below)`);

    const work = await mkdtemp(join(tmpdir(), 'framewise-bench-'));
    const table: TableRow[] = [];
    try {
      // ---- issue 2: the spine ----
      if (spineSeconds > 0) {
        const clip = await makeClip(spineSeconds, 25, note);
        say(`\n== spine: ${spineSeconds} s 640x480 clip (${clip}), all frames, tfjs ${backend.name} on this thread, batch 8 ==`);
        const dec = await decodeOnly(clip);
        say(`decode-only: ${dec.frames} frames, ${fmt(dec.fps)} frames/s`);
        const frames = await lastValueFrom(decode(clip, { size: 224 }).pipe(toArray()));
        for (const id of ids) {
          const e = await loadEmbedder({ id, modelsDir, backend: backend.name, batchSize: 8 });
          try {
            const only = await embedOnly(e, frames, 8, embedSeconds);
            const t = performance.now();
            const n = await lastValueFrom(decodeThrough(clip, { size: 224 }, embed(e, { batchSize: 8 }), 16).pipe(count()));
            const both = n / ((performance.now() - t) / 1000);
            const ratio = both / only;
            say(`${id}: embed-only ${fmt(only)} frames/s, decode+embed ${fmt(both)} frames/s, ratio ${ratio.toFixed(2)} (target >= 0.9: ${met(ratio >= 0.9)})`);
            table.push({ part: 'spine', id, what: `decode+embed / embed-only (tfjs ${backend.name}, 1 thread)`, fps: both, ratio, target: '>= 0.9', ok: ratio >= 0.9 });
          } finally {
            e.dispose();
          }
        }
      }

      // ---- issues 7 and 4: engines and end to end ----
      const clip = await makeClip(seconds, 25, note);
      say(`\n== engines: ${seconds} s 640x480 clip at 25 fps (${clip}); embed-only on pre-decoded frames; pool = ${workers} workers ==`);
      const dec = await decodeOnly(clip);
      say(`decode-only: ${dec.frames} frames, ${fmt(dec.fps)} frames/s`);
      const sample = await lastValueFrom(decode(clip, { size: 224 }).pipe(take(64), toArray()));
      for (const id of ids) {
        say(`\n-- ${id} --`);
        const fps: Partial<Record<EngineRow, number>> = {};
        let macs: number | undefined;
        for (const row of rows) {
          const r = await measureRow(row, { id, modelsDir, workers, sample, embedSeconds });
          fps[row] = r.fps;
          macs ??= r.macs;
          say(`${ROW_NAME[row].padEnd(15)} ${fmt(r.fps).padStart(8)} frames/s  ${(1000 / r.fps).toFixed(2).padStart(7)} ms/frame  ${r.cores.toFixed(2)} cores busy  (${r.note})`);
        }
        if (macs) {
          say(`multiply-adds: ${(macs / 1e6).toFixed(1)} M per frame; per engine: ${rows.map((r) => `${ROW_NAME[r]} ${((macs! * fps[r]!) / 1e9).toFixed(1)} GMAC/s`).join(', ')}`);
        }
        if (fps.pool && fps.wasm1) {
          const r = fps.pool / fps.wasm1;
          say(`wasm pool / 1 worker: ${r.toFixed(2)} (target >= 1.7: ${met(r >= 1.7)})`);
          table.push({ part: 'pool', id, what: `wasm pool (${workers}) / wasm 1 worker`, fps: fps.pool, ratio: r, target: '>= 1.7', ok: r >= 1.7 });
        }
        const best = Math.max(...rows.map((r) => fps[r] ?? 0));
        const e2e = await endToEnd({ id, clip, engine, modelsDir, workers, work, sample, embedSeconds, note });
        say(`end-to-end label (${e2e.description}): ${e2e.frames} frames, ${fmt(e2e.fps)} frames/s; embed-only of that same embedder (calls of ${DEFAULTS.embedBatch}, as the pipeline makes them): ${fmt(e2e.embedOnly)} frames/s`);
        if (e2e.engine === 'onnx') {
          const here = await endToEnd({ id, clip, engine: 'onnx', isolate: false, modelsDir, workers, work, sample, embedSeconds, note });
          say(`end-to-end label (${here.description}, on the main thread): ${fmt(here.fps)} frames/s, embed-only ${fmt(here.embedOnly)} frames/s (for comparison)`);
        }
        // The e2e embedder's own embed-only counts too (it may be an engine not among --engines).
        const limit = Math.min(dec.fps, Math.max(best, e2e.embedOnly));
        const r = e2e.fps / limit;
        say(`e2e / min(decode-only ${fmt(dec.fps)}, best embed-only ${fmt(Math.max(best, e2e.embedOnly))}) = ${r.toFixed(2)} (target >= 0.8: ${met(r >= 0.8)})`);
        table.push({ part: 'e2e', id, what: `e2e auto / min(decode, best embed)`, fps: e2e.fps, ratio: r, target: '>= 0.8', ok: r >= 0.8 });
        if (id === 'mobilenet_v2_1.0_224') {
          table.push({ part: 'e2e', id, what: 'e2e auto frames/s', fps: e2e.fps, ratio: undefined, target: '>= 100 fps', ok: e2e.fps >= 100 });
        }
        const r4 = e2e.fps / e2e.embedOnly;
        say(`e2e / embed-only of the same embedder: ${r4.toFixed(2)} (target >= 0.9: ${met(r4 >= 0.9)})`);
        table.push({ part: 'label', id, what: `e2e / embed-only (${e2e.engine}, same embedder)`, fps: e2e.fps, ratio: r4, target: '>= 0.9', ok: r4 >= 0.9 });
        table.push(...rows.map((row) => ({ part: 'embed', id, what: ROW_NAME[row], fps: fps[row]!, ratio: undefined, target: '', ok: undefined })));
      }

      // ---- issue 4: memory does not grow with the video's length ----
      if (bool(values, 'rss')) {
        const id = str(values, 'rss-embedder')!;
        embedderInfo(id);
        say(`\n== peak RSS of \`framewise label\` (${id}, engine ${engine}, bundle at 10 fps), in child processes ==`);
        const bundle = await makeBundle(work, id, 10);
        const peaks: number[] = [];
        for (const s of [60, 600]) {
          const c = await makeClip(s, 10, note);
          const r = await childRss(c, bundle, join(work, `rss-${s}`), engine, modelsDir);
          peaks.push(r.maxRssKb);
          say(`${s / 60} min (${r.frames} frames): peak RSS ${(r.maxRssKb / 1024).toFixed(0)} MiB, ${(r.ms / 1000).toFixed(1)} s`);
        }
        const r = peaks[1]! / peaks[0]!;
        say(`10 min / 1 min peak RSS: ${r.toFixed(2)} (target: no growth, ~1.0: ${met(r <= 1.1)})`);
        table.push({ part: 'rss', id, what: 'peak RSS 10 min / 1 min', fps: undefined, ratio: r, target: '<= ~1.0', ok: r <= 1.1 });
      } else {
        say('\n(peak RSS on a 10-minute vs a 1-minute clip: add --rss; it takes a few more minutes)');
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }

    const load1 = loadavg();
    say(`\n== summary (${cpu}, ${cpus().length} cores; load average ${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end) ==`);
    say(`${'part'.padEnd(6)} ${'embedder'.padEnd(22)} ${'measure'.padEnd(42)} ${'frames/s'.padStart(9)} ${'ratio'.padStart(6)}  target`);
    for (const t of table) {
      say(
        `${t.part.padEnd(6)} ${t.id.padEnd(22)} ${t.what.padEnd(42)} ${(t.fps === undefined ? '' : fmt(t.fps)).padStart(9)} ${(t.ratio === undefined ? '' : t.ratio.toFixed(2)).padStart(6)}  ${t.target}${t.ok === undefined ? '' : t.ok ? ' met' : ' MISSED'}`,
      );
    }
    return 0;
  },
};

interface TableRow {
  part: string;
  id: string;
  what: string;
  fps: number | undefined;
  ratio: number | undefined;
  target: string;
  ok: boolean | undefined;
}

function usage(msg: string): FramewiseError {
  return new FramewiseError(ErrorCodes.USAGE, msg);
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const met = (ok: boolean) => (ok ? 'met' : 'MISSED');

/** testsrc2 640x480 at `fps`, cached in the temp folder by its parameters. */
async function makeClip(seconds: number, fps: number, note: (l: string) => void): Promise<string> {
  const dir = join(tmpdir(), 'framewise-bench-clips');
  const path = join(dir, `testsrc2-640x480-${fps}fps-${seconds}s.mp4`);
  if (existsSync(path)) return path;
  await mkdir(dir, { recursive: true });
  note(`generating ${path} ...`);
  const tmp = `${path}.${process.pid}.mp4`;
  await run(requireBinary('ffmpeg'), [
    '-hide_banner', '-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', `testsrc2=size=640x480:rate=${fps}`, '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', tmp,
  ]);
  await rename(tmp, path);
  return path;
}

async function decodeOnly(clip: string): Promise<{ frames: number; fps: number }> {
  const t = performance.now();
  const frames = await lastValueFrom(decode(clip, { size: 224 }).pipe(count()));
  return { frames, fps: frames / ((performance.now() - t) / 1000) };
}

/**
 * Frames/s of embed() alone: calls of `callSize` fresh copies of the sample until `seconds` of
 * embedding time have been spent (after one warm-up call). Copying is outside the timed part.
 */
async function embedOnly(e: Embedder, sample: readonly Frame[], callSize: number, seconds: number): Promise<number> {
  return (await embedOnlyCores(e, sample, callSize, seconds)).fps;
}

/**
 * embedOnly plus the cores this process kept busy meanwhile (CPU time of all its threads, workers
 * and ONNX Runtime's included, over wall time): on a shared machine it shows how much of the
 * hardware the measurement actually got (a 2-worker pool can only double what it is given).
 */
async function embedOnlyCores(e: Embedder, sample: readonly Frame[], callSize: number, seconds: number): Promise<{ fps: number; cores: number }> {
  let next = 0;
  const batch = () => Array.from({ length: callSize }, () => {
    const f = sample[next++ % sample.length]!;
    return { rgb: f.rgb.slice(), width: f.width, height: f.height };
  });
  await e.embed(batch());
  let busy = 0;
  let frames = 0;
  let cpu = 0;
  while (busy < seconds * 1000) {
    const b = batch();
    const c = process.cpuUsage();
    const t = performance.now();
    await e.embed(b);
    busy += performance.now() - t;
    const d = process.cpuUsage(c);
    cpu += (d.user + d.system) / 1000;
    frames += b.length;
  }
  return { fps: frames / (busy / 1000), cores: cpu / busy };
}

async function measureRow(
  row: EngineRow,
  o: { id: string; modelsDir: string | undefined; workers: number; sample: Frame[]; embedSeconds: number },
): Promise<{ fps: number; cores: number; note: string; macs?: number }> {
  const batch = DEFAULTS.embedBatch;
  if (row === 'wasm1') {
    // tfjs backends are per process: on a machine with tfjs-node this row runs on it, and says so.
    const e = await loadEmbedder({ id: o.id, modelsDir: o.modelsDir, batchSize: batch });
    try {
      return { ...(await embedOnlyCores(e, o.sample, batch, o.embedSeconds)), note: `tfjs ${(await ensureBackend()).name} on this thread, batch ${batch}` };
    } finally {
      e.dispose();
    }
  }
  if (row === 'pool') {
    const pool = await createEmbeddingPool({
      size: o.workers,
      batchSize: batch,
      factory: { module: FACTORIES_MODULE, exportName: 'loadTfjsInWorker', config: { id: o.id, modelsDir: o.modelsDir, backend: 'wasm', batchSize: batch } },
    });
    try {
      // One call of `workers * batch` frames: every worker gets a full batch.
      return { ...(await embedOnlyCores(pool, o.sample, o.workers * batch, o.embedSeconds)), note: `tfjs wasm, ${o.workers} worker threads, batch ${batch} each` };
    } finally {
      await pool.close();
    }
  }
  const threads = row === 'onnx1' ? 1 : 2;
  const { loadOnnxEmbedder } = await import('../../models/onnx/engine.ts');
  const e = await loadOnnxEmbedder({ id: o.id, modelsDir: o.modelsDir, threads, batchSize: batch, onProgress: (l) => process.stderr.write(`  ${l}\n`) });
  try {
    return { ...(await embedOnlyCores(e, o.sample, batch, o.embedSeconds)), note: `onnxruntime-node, ${threads} intra-op thread(s), batch ${batch}`, macs: e.macsPerFrame };
  } finally {
    e.dispose();
  }
}

/** A bundle with random weights for `id` (speed does not depend on the weights). */
async function makeBundle(work: string, id: string, fps: number | null): Promise<string> {
  const dir = join(work, `bundle-${id}-${fps ?? 'src'}`);
  if (existsSync(join(dir, 'framewise.json'))) return dir;
  const head = createHead({ inputDim: embedderInfo(id).dim, classes: 4, hidden: DEFAULTS.hidden, seed: 1 });
  try {
    await saveBundle(dir, head, { classes: ['a', 'b', 'c', 'd'], embedderId: id, fps, crop: 'center' });
  } finally {
    head.dispose();
  }
  return dir;
}

async function endToEnd(o: {
  id: string;
  clip: string;
  engine: EngineRequest;
  isolate?: boolean;
  modelsDir: string | undefined;
  workers: number;
  work: string;
  sample: Frame[];
  embedSeconds: number;
  note: (l: string) => void;
}): Promise<{ fps: number; frames: number; description: string; engine: string; embedOnly: number }> {
  // fps null: the head runs at the source rate, so every decoded frame is labeled (comparable to embed-only).
  const bundle = await makeBundle(o.work, o.id, null);
  const { head, meta } = await loadBundle(bundle);
  const embedder = await loadEmbeddingEngine({ id: o.id, engine: o.engine, modelsDir: o.modelsDir, workers: o.workers, isolate: o.isolate, log: o.note });
  const out = join(o.work, `e2e-${o.id}`);
  try {
    const only = await embedOnly(embedder, o.sample, DEFAULTS.embedBatch, o.embedSeconds);
    const t = performance.now();
    const r = await labelVideo({ input: o.clip, name: 'bench', embedder, head, classes: meta.classes, fps: meta.fps, crop: meta.crop, outDir: out });
    const fps = r.frames / ((performance.now() - t) / 1000);
    return { fps, frames: r.frames, description: `${embedder.engine}: ${embedder.description}`, engine: embedder.engine, embedOnly: only };
  } finally {
    head.dispose();
    await embedder.close();
    await rm(out, { recursive: true, force: true });
  }
}

/** Runs `framewise label` in a child process and reads its peak RSS (getrusage maxrss, printed at exit). */
async function childRss(clip: string, bundle: string, out: string, engine: EngineRequest, modelsDir: string | undefined) {
  const preload = `data:text/javascript,process.on('exit',()=>process.stderr.write('framewise-bench maxrss '+process.resourceUsage().maxRSS+'\\n'))`;
  const args = ['--import', preload, BIN, 'label', clip, '--model', bundle, '--out', out, '--formats', 'jsonl', '--engine', engine];
  const env = { ...process.env, ...(modelsDir ? { FRAMEWISE_MODELS: modelsDir } : {}) };
  const t = performance.now();
  const stderr = await new Promise<string>((ok, fail) => {
    const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b));
    p.on('error', fail);
    p.on('close', (code) => (code === 0 ? ok(err) : fail(new Error(`framewise label exited ${code}: ${err.slice(-2000)}`))));
  });
  const ms = performance.now() - t;
  const m = /framewise-bench maxrss (\d+)/.exec(stderr);
  if (!m) throw new Error(`no maxrss line from the child: ${stderr.slice(-500)}`);
  const frames = /: (\d+) frames/.exec(stderr)?.[1];
  return { maxRssKb: Number(m[1]), ms, frames: frames ? Number(frames) : NaN };
}
