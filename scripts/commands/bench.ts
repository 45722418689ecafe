// `framewise bench`: throughput in one run, against the machine's own limits.
// Prints numbers and ratios measured side by side, never asserts (it is not a test). Sections:
//   spine   (10 s clip): decode-only, embed-only on tfjs (this thread, batch 8) and decode+embed
//           (in rounds, like the engines);
//   engines (60 s clip): per embedder, embed-only for wasm 1 worker, the wasm pool, ONNX Runtime
//           with 1 and 2 threads (and multiply-adds/s), end-to-end `label` with the auto engine,
//           in interleaved rounds (medians printed): the shared machine's speed drifts by tens of
//           percent within minutes, and a ratio of two figures taken minutes apart measures that;
//   precision: per embedder, fp32 against int8 on the same ONNX Runtime workers (embed-only and
//           end to end, interleaved rounds) and the agreement figures (scripts/bench-precision.ts);
//   rss     (--rss): peak RSS of `framewise label` on a 1-minute and a 10-minute clip.
// --json prints one JSON object with every figure on stdout (the text goes to stderr).
// Clips are generated with ffmpeg's testsrc2 (640x480, 25 fps) into the OS temp folder and
// reused by later runs. Embed-only runs on pre-decoded frames.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { count, lastValueFrom, take, toArray } from 'rxjs';
import { ensureBackend } from '../../models/backend.ts';
import { loadEmbedder, type Embedder } from '../../models/embedder.ts';
import { loadEmbeddingEngine, type EngineRequest } from '../../models/engine-choice.ts';
import { createEmbeddingPool } from '../../models/pool/pool.ts';
import { FACTORIES_MODULE } from '../../models/pool/factories.ts';
import { loadBundle, saveBundle, type BundleMeta } from '../../models/recurrent/bundle.ts';
import { createHead, type RecurrentHead } from '../../models/recurrent/head.ts';
import { embedderInfo } from '../../models/registry.ts';
import { decode, decodeThrough } from '../../pipeline/decode.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { embed, embedCredit } from '../../pipeline/embed-stage.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { requireBinary } from '../../pipeline/probe.ts';
import { labelVideo } from '../../pipeline/run-label.ts';
import type { Frame } from '../../core/types.ts';
import { bool, modelOptions, num, str, type CommandSpec, modelRequest } from '../command.ts';
import { benchPrecision, type PrecisionFigures } from '../bench-precision.ts';

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
    'embed-seconds': { type: 'string', valueName: 'S', default: '3', description: 'time per embed-only measurement' },
    rounds: {
      type: 'string',
      valueName: 'N',
      default: '3',
      description: 'rounds of every measurement (each round measures every row once; medians are printed)',
    },
    quick: { type: 'boolean', description: 'short clips (10 s / 5 s) and 1.5 s per embed-only row, for a smoke run' },
    json: { type: 'boolean', description: 'print one JSON object with every figure on stdout (the text goes to stderr)' },
    'skip-engines': { type: 'boolean', description: 'skip the engine rows and the auto end-to-end run (the precision part still runs)' },
    'skip-precision': { type: 'boolean', description: 'skip fp32 vs int8' },
    'agreement-data': {
      type: 'string',
      valueName: 'DIR',
      description: 'labeled clips for the int8 label agreement (default <models-dir>/../data/video/labeled/ud810_ps7)',
    },
    'agreement-bundle': {
      type: 'string',
      valueName: 'DIR',
      description: 'a bundle trained on fp32 embeddings of --agreement-data (default: trained by the first bench run into $FRAMEWISE_CACHE/bench/)',
    },
    rss: { type: 'boolean', description: 'also compare peak RSS of `framewise label` on a 1-minute and a 10-minute clip (about 2-4 more minutes)' },
    'rss-embedder': { type: 'string', valueName: 'ID', default: 'mobilenet_v1_0.25_224', description: 'embedder for the RSS part' },
    ...modelOptions,
  },
  async run(ctx) {
    const { values, stdout, stderr } = ctx;
    const json = bool(values, 'json');
    const say = (l: string) => (json ? stderr : stdout).write(l + '\n');
    const embedders: Record<string, PrecisionFigures> = {};
    const note = (l: string) => stderr.write(`  ${l}\n`);
    const quick = bool(values, 'quick');
    const ids = str(values, 'embedders')!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    ids.forEach((id) => embedderInfo(id));
    const rows = str(values, 'engines')!
      .split(',')
      .map((s) => s.trim()) as EngineRow[];
    for (const r of rows) if (!ENGINE_ROWS.includes(r)) throw usage(`unknown --engines row "${r}": use ${ENGINE_ROWS.join(', ')}`);
    const seconds = quick ? 10 : num(values, 'seconds', 1, 3600)!;
    const spineSeconds = quick ? 5 : num(values, 'spine-seconds', 0, 3600)!;
    const embedSeconds = quick ? 1.5 : num(values, 'embed-seconds', 0.1, 600)!;
    const rounds = quick ? 1 : num(values, 'rounds', 1, 100)!;
    if (!Number.isInteger(rounds)) throw usage(`--rounds must be an integer, got ${rounds}`);
    const { workers, engine, modelsDir, cacheDir, backend: backendRequest, precision } = modelRequest(ctx);

    const backend = await ensureBackend(backendRequest);
    const cpu = cpus()[0]?.model.trim() ?? 'unknown cpu';
    const load0 = loadavg();
    say(
      `framewise bench: ${cpu}, ${cpus().length} cores (availableParallelism ${availableParallelism()}), node ${process.version}, tfjs backend ${backend.name}`,
    );
    say(`load average at start: ${load0.map((x) => x.toFixed(2)).join(' ')} (other processes on the machine lower every number below)`);

    const work = await mkdtemp(join(tmpdir(), 'framewise-bench-'));
    const table: TableRow[] = [];
    try {
      // ---- the spine: decode, embed, and both together ----
      if (spineSeconds > 0) {
        const clip = await makeClip(spineSeconds, 25, note);
        say(`\n== spine: ${spineSeconds} s 640x480 clip (${clip}), all frames, tfjs ${backend.name} on this thread, batch 8 ==`);
        const dec = await decodeOnly(clip);
        say(`decode-only: ${dec.frames} frames, ${fmt(dec.fps)} frames/s`);
        const frames = await lastValueFrom(decode(clip, { size: 224 }).pipe(toArray()));
        for (const id of ids) {
          const e = await loadEmbedder({ id, modelsDir, cacheDir, backend: backend.name, batchSize: 8 });
          try {
            // Rounds of (embed-only, decode+embed) pairs, as in the engine part below.
            const runs: { only: number; both: number }[] = [];
            for (let r = 0; r < rounds; r++) {
              const only = (await embedOnly(e, frames, embedSeconds, 8)).fps;
              const t = performance.now();
              const n = await lastValueFrom(decodeThrough(clip, { size: 224 }, embed(e, { batchSize: 8 }), embedCredit({ batchSize: 8 })).pipe(count()));
              runs.push({ only, both: n / ((performance.now() - t) / 1000) });
            }
            const only = median(runs.map((x) => x.only));
            const both = median(runs.map((x) => x.both));
            const ratio = median(runs.map((x) => x.both / x.only));
            say(
              `${id}: embed-only ${fmt(only)} frames/s, decode+embed ${fmt(both)} frames/s, ratio ${ratio.toFixed(2)} ` +
                `(rounds ${runs.map((x) => (x.both / x.only).toFixed(2)).join(', ')}; target >= 0.9: ${met(ratio >= 0.9)})`,
            );
            table.push({
              part: 'spine',
              id,
              what: `decode+embed / embed-only (tfjs ${backend.name}, 1 thread)`,
              fps: both,
              ratio,
              target: '>= 0.9',
              ok: ratio >= 0.9,
            });
          } finally {
            e.dispose();
          }
        }
      }

      // ---- engines and end to end ----
      const clip = await makeClip(seconds, 25, note);
      say(
        `\n== engines: ${seconds} s 640x480 clip at 25 fps (${clip}); embed-only on pre-decoded frames, calls of ${DEFAULTS.embedBatch}, ${DEFAULTS.embedConcurrency} in flight (as the pipeline makes them); pool = ${workers} workers ==`,
      );
      say(
        `${rounds} rounds, each measuring every row once, so slow and fast spells of the shared machine fall on all of them alike; figures are medians over rounds, ratios medians of the per-round ratios`,
      );
      const sample = await lastValueFrom(decode(clip, { size: 224 }).pipe(take(64), toArray()));
      for (const id of bool(values, 'skip-engines') ? [] : ids) {
        say(`\n-- ${id} --`);
        const engines = await openRows(rows, { id, modelsDir, cacheDir, workers });
        const bundle = await makeBundle(work, id, null);
        const { head, meta } = await loadBundle(bundle);
        // --precision picks the auto engine's precision here too, so the CPU-budget figures exist for int8.
        const auto = await loadEmbeddingEngine({ id, engine, modelsDir, cacheDir, workers, precision, log: note });
        const per: Record<string, number[]> = {};
        const push = (k: string, v: number) => (per[k] ??= []).push(v);
        try {
          for (let r = 0; r < rounds; r++) {
            const dec = await decodeOnly(clip);
            push('decode', dec.fps);
            for (const row of rows) {
              const m = await embedOnly(engines[row]!.embedder, sample, embedSeconds);
              push(row, m.fps);
              push(`${row}.cores`, m.cores);
            }
            const only = await embedOnly(auto, sample, embedSeconds);
            push('autoOnly', only.fps);
            const e2e = await endToEnd({ clip, embedder: auto, head, meta, out: join(work, `e2e-${id}`) });
            push('e2e', e2e.fps);
            if (e2e.decoderMsPerFrame !== undefined) push('e2e.decoderMs', e2e.decoderMsPerFrame);
            push('e2e.processMs', e2e.processMsPerFrame);
            const best = Math.max(only.fps, ...rows.map((row) => per[row]!.at(-1)!));
            push('best', best);
            push('ratio', e2e.fps / Math.min(dec.fps, best));
            push('embedMs', (only.cores / only.fps) * 1000);
            if (e2e.decoderMsPerFrame !== undefined) {
              // The CPU budget: every core doing nothing but decode and embed, each at the CPU cost
              // per frame it has (ffmpeg in this very run, the engine alone just before).
              const ceiling = (cpus().length * 1000) / (e2e.decoderMsPerFrame + per.embedMs!.at(-1)!);
              push('ceiling', ceiling);
              push('ratioCeiling', e2e.fps / ceiling);
            }
            push('ratioSame', e2e.fps / only.fps);
            if (per.pool && per.wasm1) push('poolRatio', per.pool.at(-1)! / per.wasm1.at(-1)!);
            if (per.onnx2 && per.onnx1) push('onnxRatio', per.onnx2.at(-1)! / per.onnx1.at(-1)!);
            note(
              `round ${r + 1}/${rounds}: decode ${fmt(dec.fps)}, ${rows.map((row) => `${row} ${fmt(per[row]!.at(-1)!)}`).join(', ')}, e2e ${fmt(e2e.fps)} frames/s`,
            );
          }
        } finally {
          head.dispose();
          await auto.close();
          for (const e of Object.values(engines)) await e!.close();
        }

        const m = (k: string) => median(per[k]!);
        const spread = (k: string) => `${fmt(Math.min(...per[k]!))}-${fmt(Math.max(...per[k]!))}`;
        say(`decode-only        ${fmt(m('decode')).padStart(8)} frames/s  (rounds ${spread('decode')})`);
        const macs = Object.values(engines).find((e) => e?.macs)?.macs;
        for (const row of rows) {
          say(
            `${ROW_NAME[row].padEnd(18)} ${fmt(m(row)).padStart(8)} frames/s  ${(1000 / m(row)).toFixed(2).padStart(7)} ms/frame  ${m(`${row}.cores`).toFixed(2)} cores busy` +
              `${macs ? `  ${((macs * m(row)) / 1e9).toFixed(1)} GMAC/s` : ''}  (rounds ${spread(row)}; ${engines[row]!.note})`,
          );
        }
        if (macs) say(`multiply-adds: ${(macs / 1e6).toFixed(1)} M per frame`);
        if (per.poolRatio) {
          const r = m('poolRatio');
          say(`wasm pool / 1 worker: ${r.toFixed(2)} (rounds ${per.poolRatio.map((x) => x.toFixed(2)).join(', ')}; target >= 1.7: ${met(r >= 1.7)})`);
          table.push({ part: 'pool', id, what: `wasm pool (${workers}) / wasm 1 worker`, fps: m('pool'), ratio: r, target: '>= 1.7', ok: r >= 1.7 });
        }
        if (per.onnxRatio) {
          // The machine's own reference: a native engine built to use every core, given a second thread.
          say(`for comparison, onnx 2 threads / 1 thread: ${m('onnxRatio').toFixed(2)} (rounds ${per.onnxRatio.map((x) => x.toFixed(2)).join(', ')})`);
        }
        const cpu = per['e2e.decoderMs'] ? `; CPU per frame: ffmpeg ${m('e2e.decoderMs').toFixed(2)} ms, this process ${m('e2e.processMs').toFixed(2)} ms` : '';
        say(`end-to-end label (${auto.engine}: ${auto.description}): ${fmt(m('e2e'))} frames/s (rounds ${spread('e2e')})${cpu}`);
        say(
          `  embed-only of that same embedder: ${fmt(m('autoOnly'))} frames/s; e2e / it: ${m('ratioSame').toFixed(2)} (target >= 0.9: ${met(m('ratioSame') >= 0.9)})`,
        );
        const ratio = m('ratio');
        say(`  e2e / min(decode-only, best embed-only ${fmt(m('best'))}) = ${ratio.toFixed(2)} (target >= 0.8: ${met(ratio >= 0.8)})`);
        if (per.ceiling) {
          say(
            `  CPU budget: ffmpeg ${m('e2e.decoderMs').toFixed(2)} ms + embedder ${m('embedMs').toFixed(2)} ms per frame on ${cpus().length} cores allow at most ` +
              `${fmt(m('ceiling'))} frames/s (${(m('ceiling') / Math.min(m('decode'), m('best'))).toFixed(2)} of that min); e2e reaches ${m('ratioCeiling').toFixed(2)} of it`,
          );
        }
        table.push({ part: 'e2e', id, what: `e2e auto / min(decode, best embed)`, fps: m('e2e'), ratio, target: '>= 0.8', ok: ratio >= 0.8 });
        if (per.ceiling)
          table.push({ part: 'e2e', id, what: `e2e auto / CPU budget of decode + embed`, fps: m('e2e'), ratio: m('ratioCeiling'), target: '', ok: undefined });
        if (id === 'mobilenet_v2_1.0_224') {
          table.push({ part: 'e2e', id, what: 'e2e auto frames/s', fps: m('e2e'), ratio: undefined, target: '>= 100 fps', ok: m('e2e') >= 100 });
        }
        table.push({
          part: 'label',
          id,
          what: `e2e / embed-only (${auto.engine}, same embedder)`,
          fps: m('e2e'),
          ratio: m('ratioSame'),
          target: '>= 0.9',
          ok: m('ratioSame') >= 0.9,
        });
        table.push(...rows.map((row) => ({ part: 'embed', id, what: ROW_NAME[row], fps: m(row), ratio: undefined, target: '', ok: undefined })));
      }

      // ---- fp32 against int8 ----
      if (!bool(values, 'skip-precision')) {
        const agreementData = str(values, 'agreement-data') ?? (modelsDir ? join(modelsDir, '..', 'data', 'video', 'labeled', 'ud810_ps7') : undefined);
        say(
          `\n== precision: fp32 vs int8 on ONNX Runtime (${workers} workers x 1 thread), ${rounds} interleaved rounds; label agreement on ${agreementData ?? '(no data)'} ==`,
        );
        for (const id of ids) {
          const bundle = await loadBundle(await makeBundle(work, id, null));
          try {
            const f = await benchPrecision({
              id,
              modelsDir,
              cacheDir,
              workers,
              rounds,
              embedSeconds,
              clip,
              sample,
              bundle,
              work,
              agreementData,
              agreementBundle: str(values, 'agreement-bundle'),
              bin: BIN,
              note,
              embedOnly,
              endToEnd,
            });
            embedders[id] = f;
            const lab =
              f.agreement.labelAgreement === null
                ? 'no labeled clips'
                : `${(f.agreement.labelAgreement * 100).toFixed(1)}% of ${f.agreement.labelFrames} frames`;
            say(
              `${id}: embed-only fp32 ${fmt(f.embedOnly.fp32)}, int8 ${fmt(f.embedOnly.int8)} frames/s (int8/fp32 ${f.ratios.embedOnly.toFixed(2)}); end to end fp32 ${fmt(f.endToEnd.fp32)}, int8 ${fmt(f.endToEnd.int8)} frames/s (int8/fp32 ${f.ratios.endToEnd.toFixed(2)})`,
            );
            say(
              `  label process CPU per frame (beyond ffmpeg): fp32 ${f.processMsPerFrame.fp32.toFixed(2)} ms, int8 ${f.processMsPerFrame.int8.toFixed(2)} ms; agreement: cosine median ${f.agreement.cosineMedian.toFixed(4)} (5th pct ${f.agreement.cosineP5.toFixed(4)}), labels ${lab}`,
            );
            const v2 = id === 'mobilenet_v2_1.0_224';
            table.push({
              part: 'int8',
              id,
              what: 'embed-only int8 / fp32',
              fps: f.embedOnly.int8,
              ratio: f.ratios.embedOnly,
              target: v2 ? '>= 2.0' : '',
              ok: v2 ? f.ratios.embedOnly >= 2 : undefined,
            });
            table.push({
              part: 'int8',
              id,
              what: 'e2e int8 / fp32',
              fps: f.endToEnd.int8,
              ratio: f.ratios.endToEnd,
              target: v2 ? '>= 1.5' : '',
              ok: v2 ? f.ratios.endToEnd >= 1.5 : undefined,
            });
            if (f.agreement.labelAgreement !== null)
              table.push({
                part: 'int8',
                id,
                what: 'label agreement int8 vs fp32 (fp32 bundle)',
                fps: undefined,
                ratio: f.agreement.labelAgreement,
                target: '>= 0.98',
                ok: f.agreement.labelAgreement >= 0.98,
              });
          } finally {
            bundle.head.dispose();
          }
        }
      }

      // ---- memory does not grow with the video's length ----
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
    if (json) {
      stdout.write(
        JSON.stringify({
          cpu,
          cores: cpus().length,
          node: process.version,
          loadAverage: { start: load0[0], end: load1[0] },
          rounds,
          workers,
          table,
          embedders,
        }) + '\n',
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
    '-hide_banner',
    '-v',
    'error',
    '-nostdin',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=640x480:rate=${fps}`,
    '-t',
    String(seconds),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-pix_fmt',
    'yuv420p',
    '-movflags',
    '+faststart',
    tmp,
  ]);
  await rename(tmp, path);
  return path;
}

async function decodeOnly(clip: string): Promise<{ frames: number; fps: number }> {
  const t = performance.now();
  const frames = await lastValueFrom(decode(clip, { size: 224 }).pipe(count()));
  return { frames, fps: frames / ((performance.now() - t) / 1000) };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/**
 * Frames/s of embed() alone, called as the embed operator calls it: `callSize` frames per call,
 * `inFlight` calls at a time, for `seconds`, after one warm-up call. Each call gets fresh copies
 * of the sample (the pool takes ownership of the pixel buffers it is given); copying 150 KB per
 * frame is inside the timed part and costs under 1% of the cheapest engine's time per frame.
 * `cores`: CPU time of all this process's threads (workers and ONNX Runtime's included) over
 * wall time; on a shared machine it shows how much of the hardware the measurement got.
 */
async function embedOnly(
  e: Embedder,
  sample: readonly Frame[],
  seconds: number,
  callSize: number = DEFAULTS.embedBatch,
  inFlight: number = DEFAULTS.embedConcurrency,
): Promise<{ fps: number; cores: number }> {
  let next = 0;
  const batch = () =>
    Array.from({ length: callSize }, () => {
      const f = sample[next++ % sample.length]!;
      return { rgb: f.rgb.slice(), width: f.width, height: f.height };
    });
  await e.embed(batch());
  let frames = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const loop = async () => {
    while (performance.now() - t0 < seconds * 1000) {
      const b = batch();
      await e.embed(b);
      frames += b.length;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { fps: frames / (ms / 1000), cores: (cpu.user + cpu.system) / 1000 / ms };
}

interface RowEngine {
  embedder: Embedder;
  note: string;
  macs?: number;
  close(): Promise<void>;
}

/** Every row's engine, loaded once and kept for all rounds (an idle engine costs no CPU). */
async function openRows(
  rows: readonly EngineRow[],
  o: { id: string; modelsDir: string | undefined; cacheDir: string; workers: number },
): Promise<Partial<Record<EngineRow, RowEngine>>> {
  const out: Partial<Record<EngineRow, RowEngine>> = {};
  try {
    for (const row of rows) out[row] = await openRow(row, o);
  } catch (err) {
    for (const e of Object.values(out)) await e!.close();
    throw err;
  }
  return out;
}

async function openRow(row: EngineRow, o: { id: string; modelsDir: string | undefined; cacheDir: string; workers: number }): Promise<RowEngine> {
  const batch = DEFAULTS.embedBatch;
  if (row === 'wasm1' || row === 'pool') {
    // Both rows are the same pool code, one worker against N, with tasks of the same size (the
    // N-worker pool's share of a call; per-frame speed depends on the batch): their ratio is the
    // pool's scaling alone.
    const size = row === 'wasm1' ? 1 : o.workers;
    const task = Math.max(1, Math.ceil(batch / o.workers));
    const pool = await createEmbeddingPool({
      size,
      batchSize: task,
      factory: {
        module: FACTORIES_MODULE,
        exportName: 'loadTfjsInWorker',
        config: { id: o.id, modelsDir: o.modelsDir, cacheDir: o.cacheDir, backend: 'wasm', batchSize: task },
      },
    });
    return { embedder: pool, note: `tfjs wasm, ${size} worker thread${size > 1 ? 's' : ''}, tasks of ${task} frames`, close: () => pool.close() };
  }
  const threads = row === 'onnx1' ? 1 : 2;
  const { loadOnnxEmbedder } = await import('../../models/onnx/onnx-engine.ts');
  const e = await loadOnnxEmbedder({
    id: o.id,
    modelsDir: o.modelsDir,
    cacheDir: o.cacheDir,
    threads,
    batchSize: batch,
    onProgress: (l) => process.stderr.write(`  ${l}\n`),
  });
  return { embedder: e, note: `onnxruntime-node, ${threads} intra-op thread(s), on this thread`, macs: e.macsPerFrame, close: async () => e.dispose() };
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

/** CPU seconds of this process and of its waited-for children (ffmpeg) from /proc; undefined elsewhere. */
function procCpu(): { self: number; children: number } | undefined {
  try {
    const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    const tick = 100; // USER_HZ: 100 on every Linux Node runs on
    return { self: (Number(f[11]) + Number(f[12])) / tick, children: (Number(f[13]) + Number(f[14])) / tick };
  } catch {
    return undefined;
  }
}

/** One `labelVideo` run (the code `framewise label` runs) over the whole clip, JSONL output. */
async function endToEnd(o: {
  clip: string;
  embedder: Embedder;
  head: RecurrentHead;
  meta: BundleMeta;
  out: string;
}): Promise<{ fps: number; frames: number; decoderMsPerFrame?: number; processMsPerFrame: number }> {
  const c0 = procCpu();
  const u0 = process.cpuUsage();
  const t = performance.now();
  try {
    const r = await labelVideo({
      model: { head: o.head, embedder: o.embedder, meta: o.meta },
      input: o.clip,
      name: 'bench',
      outDir: o.out,
      formats: ['jsonl'],
    });
    const fps = r.frames / ((performance.now() - t) / 1000);
    const u = process.cpuUsage(u0);
    const c1 = procCpu();
    return {
      fps,
      frames: r.frames,
      processMsPerFrame: (u.user + u.system) / 1000 / r.frames,
      ...(c0 && c1 ? { decoderMsPerFrame: ((c1.children - c0.children) * 1000) / r.frames } : {}),
    };
  } finally {
    await rm(o.out, { recursive: true, force: true });
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
