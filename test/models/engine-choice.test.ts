// Engine selection with the real engines installed here: auto takes ONNX Runtime (no CUDA
// tfjs on this machine), falls back to tfjs with the reason printed when the ONNX file is refused
// or onnxruntime-node is missing, and `--engine tfjs --workers 2` runs the wasm worker pool, both
// from the library and from `node bin/framewise.js` (workers must load TypeScript there too).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEmbeddingEngine, parseEngineRequest, parseWorkers, type EngineEmbedder } from '../../models/engine-choice.ts';
import { openModel } from '../../models/open-model.ts';
import { saveBundle } from '../../models/recurrent/bundle.ts';
import { createHead } from '../../models/recurrent/head.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { renderHelp } from '../../scripts/command.ts';
import { command as labelCommand } from '../../scripts/commands/label.ts';
import { MODELS_DIR, REPO_ROOT, loadPhotoRgb } from '../helpers/real-models.ts';
import { makeClip, tmpDir, type TmpDir } from '../helpers/video.ts';
import { rejection } from '../helpers/errors.ts';

const ID = 'mobilenet_v1_0.25_224';
const run = promisify(execFile);
let dir: TmpDir;
let cacheDir: string;
let bundle: string;
const lines: string[] = [];
const log = (l: string) => lines.push(l);
const base = () => ({ id: ID, modelsDir: MODELS_DIR, cacheDir, allowDownload: false, log });
const osThreads = () => readdirSync('/proc/self/task').length;

beforeAll(async () => {
  dir = tmpDir('framewise-engine-');
  cacheDir = dir.file('cache');
  bundle = dir.file('bundle');
  const head = createHead({ inputDim: 256, classes: 2, hidden: 8, seed: 3 });
  try {
    await saveBundle(bundle, head, { classes: ['a', 'b'], embedderId: ID, fps: 5, crop: 'center' });
  } finally {
    head.dispose();
  }
});
afterAll(() => dir?.cleanup());

describe('auto', () => {
  let onnx: EngineEmbedder | undefined;
  afterAll(() => onnx?.close());

  // The first use exports and verifies the ONNX file: minutes on a loaded 2-core machine.
  test('picks ONNX Runtime here (no tfjs-node-gpu), in worker threads, prints the choice once, and embeds', { timeout: 180_000 }, async () => {
    lines.length = 0;
    // The first use exports and verifies the ONNX file into the (temporary) cache.
    onnx = await loadEmbeddingEngine({ ...base(), engine: 'auto' });
    expect(onnx.engine).toBe('onnx');
    expect(onnx.backend).not.toBe('node-gpu');
    // Its run() blocks a thread for a whole batch: by default those threads are workers, one
    // one-thread session per core.
    expect(onnx.workers).toBe(availableParallelism());
    expect(onnx.pool?.stats()).toMatchObject({ size: availableParallelism(), ready: availableParallelism() });
    expect(onnx.description).toBe(`onnxruntime-node, ${availableParallelism()} worker thread(s) x 1 intra-op thread(s)`);
    expect(onnx.macsPerFrame).toBeGreaterThan(1e7);
    expect(onnx.fallback).toBeUndefined();
    expect(lines.filter((l) => /embedding engine onnx for mobilenet_v1_0\.25_224 .*fastest available/.test(l))).toHaveLength(1);
    const again = await loadEmbeddingEngine({ ...base(), engine: 'auto' });
    await again.close();
    expect(lines.filter((l) => /embedding engine onnx/.test(l))).toHaveLength(1);
    const [e] = await onnx.embed([await loadPhotoRgb('cat.bmp')]);
    expect(e!.length).toBe(256);
    expect(e!.every(Number.isFinite)).toBe(true);
  });

  test('a corrupt ONNX file makes auto fall back to tfjs, printing why', async () => {
    const bad = dir.file('corrupt.onnx');
    writeFileSync(bad, 'definitely not protobuf');
    lines.length = 0;
    const e = await loadEmbeddingEngine({ ...base(), engine: 'auto', onnxFile: bad, workers: 1 });
    try {
      expect(e.engine).toBe('tfjs');
      expect(e.pool).toBeUndefined();
      expect(e.fallback).toContain(bad);
      expect(e.fallback).toContain(ErrorCodes.MODEL_INVALID);
      expect(lines.join('\n')).toMatch(/ONNX Runtime not used: .*corrupt\.onnx.*; falling back to tfjs/);
      expect(lines.join('\n')).toMatch(/embedding engine tfjs for mobilenet_v1_0\.25_224 \(tfjs wasm, this thread\)/);
      const [x] = await e.embed([await loadPhotoRgb('cat.bmp')]);
      expect(x!.length).toBe(256);
    } finally {
      await e.close();
    }
  });

  test('a missing onnxruntime-node makes auto fall back to tfjs, printing why', async () => {
    lines.length = 0;
    const missing = Object.assign(new Error("Cannot find package 'onnxruntime-node'"), { code: 'ERR_MODULE_NOT_FOUND' });
    const e = await loadEmbeddingEngine({ ...base(), engine: 'auto', workers: 1, importOnnx: () => Promise.reject(missing) });
    try {
      expect(e.engine).toBe('tfjs');
      expect(lines.join('\n')).toMatch(
        /ONNX Runtime not used: onnxruntime-node cannot be loaded \(Cannot find package 'onnxruntime-node'\).*falling back to tfjs/,
      );
    } finally {
      await e.close();
    }
  });

  test('forcing --engine onnx never falls back: a refused file is an error naming it', async () => {
    const bad = dir.file('corrupt.onnx');
    const err = await rejection(loadEmbeddingEngine({ ...base(), engine: 'onnx', onnxFile: bad }));
    expect(err.code).toBe(ErrorCodes.MODEL_INVALID);
    expect(err.message).toMatch(/^--engine onnx: .*corrupt\.onnx/);
  });

  test('isolate: false runs ONNX Runtime on this thread with the same results; the worker leaves no thread', async () => {
    const here = await loadEmbeddingEngine({ ...base(), engine: 'onnx', isolate: false });
    expect(here.pool).toBeUndefined();
    expect(here.workers).toBe(0);
    const photos = [await loadPhotoRgb('cat.bmp'), await loadPhotoRgb('grace_hopper.bmp')];
    const want = await here.embed(photos);
    const got = await onnx!.embed(photos.map((p) => ({ ...p, rgb: p.rgb.slice() })));
    got.forEach((g, i) => g.forEach((v, k) => expect(v).toBeCloseTo(want[i]![k]!, 5)));
    await here.close();
    const threads = osThreads();
    await onnx!.close();
    onnx = undefined;
    // The worker and its ONNX Runtime threads are gone.
    const end = Date.now() + 5_000;
    while (osThreads() >= threads && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(osThreads()).toBeLessThan(threads);
  });
});

describe('tfjs with workers', () => {
  test('--engine tfjs --workers 2 uses the pool, through openModel as label/eval/serve do', async () => {
    const model = await openModel({ bundle, modelsDir: MODELS_DIR, engine: 'tfjs', workers: 2 });
    try {
      const e = model.embedder as EngineEmbedder;
      expect(e.engine).toBe('tfjs');
      expect(e.workers).toBe(2);
      expect(e.pool?.stats()).toMatchObject({ size: 2, ready: 2 });
      expect(e.description).toBe('tfjs wasm, 2 worker threads');
      const out = await e.embed([await loadPhotoRgb('cat.bmp'), await loadPhotoRgb('grace_hopper.bmp')]);
      expect(out.map((x) => x.length)).toEqual([256, 256]);
      expect(e.pool!.stats().tasks).toBe(2);
    } finally {
      model.dispose();
    }
  });

  test('`node bin/framewise.js label --engine tfjs --workers 2` runs the pool from the CLI', async () => {
    const clip = await makeClip({ durationSec: 2, fps: 10, width: 160, height: 120, dir: dir.path });
    const out = dir.file('labels');
    const { stderr } = await run(
      process.execPath,
      [join(REPO_ROOT, 'bin/framewise.js'), 'label', clip, '--model', bundle, '--out', out, '--formats', 'jsonl', '--engine', 'tfjs', '--workers', '2'],
      { env: { ...process.env, FRAMEWISE_MODELS: MODELS_DIR, FRAMEWISE_CACHE: cacheDir }, cwd: dir.path },
    );
    expect(stderr).toMatch(/embedding engine tfjs for mobilenet_v1_0\.25_224 \(tfjs wasm, 2 worker threads\)/);
    const jsonl = readdirSync(out).find((f) => f.endsWith('.frames.jsonl'));
    expect(jsonl).toBeDefined();
    expect(existsSync(join(out, jsonl!))).toBe(true);
  });

  test('--workers 1 runs tfjs on the calling thread', async () => {
    const e = await loadEmbeddingEngine({ ...base(), engine: 'tfjs', workers: 1 });
    expect(e.pool).toBeUndefined();
    expect(e.workers).toBe(0);
    await e.close();
  });
});

describe('options', () => {
  test('--engine and --workers are in every model command, with their defaults in --help (once each)', () => {
    const help = renderHelp(labelCommand);
    expect(help).toMatch(/--engine NAME\s+embedding engine: auto .* \(default: auto; env FRAMEWISE_ENGINE\)/);
    expect(help).toMatch(/--workers N\s+embedding worker threads .* \(default: \d+, the cores here; env FRAMEWISE_WORKERS\)/);
    for (const line of help.split('\n')) expect(line.split('(default:').length, line).toBeLessThanOrEqual(2);
  });

  test('bad values are usage errors', () => {
    expect(parseEngineRequest('auto')).toBe('auto');
    expect(() => parseEngineRequest('cuda')).toThrow(/unknown engine "cuda": use one of auto, tfjs, onnx/);
    expect(parseWorkers('3')).toBe(3);
    expect(() => parseWorkers('0')).toThrow(FramewiseError);
    expect(() => parseWorkers('1.5')).toThrow(/workers must be an integer in \[1, 64\]/);
  });
});
