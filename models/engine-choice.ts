// Engine selection: which code runs the embedder, on how many threads. The recurrent head always
// stays on the process's tfjs backend; only the embedder switches.
//
// auto, fastest first (measured on a 2-core EPYC): tfjs-node-gpu when its CUDA backend
// loads; else ONNX Runtime (native, several times faster than wasm; one session per worker
// thread); else tfjs-node; else tfjs wasm with a worker pool (one thread per instance in Node).
// A refused ONNX file or a missing onnxruntime-node falls back to tfjs with the reason printed.
// The choice is printed once.
import { availableParallelism } from 'node:os';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { ensureBackend, type BackendChoice, type BackendRequest } from './backend.ts';
import { loadEmbedder, type Embedder } from './embedder.ts';
import type { OnnxEmbedderConfig } from './onnx/onnx-engine.ts';
import { FACTORIES_MODULE } from './pool/factories.ts';
import { chooseAutoPrecision, parsePrecisionRequest, type Precision, type PrecisionRequest } from './precision.ts';
import { createEmbeddingPool, type EmbeddingPool } from './pool/pool.ts';
import { embedderInfo } from './registry.ts';

export const ENGINES = ['auto', 'tfjs', 'onnx'] as const;
export type EngineRequest = (typeof ENGINES)[number];

export interface EngineConfig {
  /** 'auto' (default), 'tfjs' or 'onnx' (forced: no fallback). */
  engine?: EngineRequest;
  /** Embedder id from models/registry.ts. Default DEFAULTS.embedder. */
  id?: string;
  /** Folder holding <id>/model.json and <id>/layers/; without it, the cache, then a download. */
  modelsDir?: string;
  /** Cache root (downloaded weights, ONNX exports). Default DEFAULTS.cacheDir. */
  cacheDir?: string;
  /** tfjs backend for the head and the tfjs engine. Default 'auto'. */
  backend?: BackendRequest;
  /**
   * Worker threads embedding, an integer in [1, 64], each with its own model instance: the tfjs
   * wasm/cpu engine (1 runs it on this thread) and ONNX Runtime (one session per worker).
   * Default: the number of cores. tfjs-node is multi-threaded
   * already and ignores it.
   */
  workers?: number;
  /**
   * ONNX Runtime intra-op threads per session, an integer in [1, 64]. Default: cores / workers
   * (at least 1), so 1 with the default workers. Separate sessions on separate batches keep the
   * cores busier than one session splitting every op between threads, which waits at each op
   * for its slowest thread whenever the decoder or the head holds a core (measured on 2 cores:
   * 15-40% more frames/s end to end).
   */
  threads?: number;
  /** Most frames per model call (per worker for the pool). Default DEFAULTS.embedBatch. */
  batchSize?: number;
  /**
   * Run the ONNX engine in worker threads (default true; `workers` of them). Its run() blocks the
   * calling thread for the whole batch (tens of ms): in workers, the live server's event loop
   * keeps answering sockets, and offline the head, the sinks and the decoder's pipe run
   * meanwhile. false runs one session on this thread, with `threads` (default: cores) threads.
   */
  isolate?: boolean;
  /** An ONNX file to use instead of the cached export (it is verified all the same). */
  onnxFile?: string;
  /** Fetch the official weights when no local copy exists. Default true. */
  allowDownload?: boolean;
  /** The engine line (printed once per distinct choice) and fallback reasons. Default stderr. */
  log?: (line: string) => void;
  /** Loading progress (export, verification, weights). Default silent. */
  onProgress?: (line: string) => void;
  /**
   * fp32, int8 (the quantized ONNX export, made on first use: forced, so a refused export is an
   * error) or auto (int8 where its export is verified and measured faster here). Default auto.
   */
  precision?: PrecisionRequest;
  /** Images/videos (files or folders) to calibrate an int8 export on (`--calibrate`). */
  calibrate?: readonly string[];
  /** The run's own inputs: calibrated on when int8 is asked for and no export exists yet. */
  calibrationInputs?: readonly string[];
  /** Tests: how the ONNX engine module is imported (to simulate onnxruntime-node missing). */
  importOnnx?: () => Promise<typeof import('./onnx/onnx-engine.ts')>;
}

/** An embedder plus what runs it. */
export interface EngineEmbedder extends Embedder {
  readonly engine: 'tfjs' | 'onnx';
  /** The numbers the embedder computes with. */
  readonly precision: Precision;
  /** One line: engine, backend, threads/workers. */
  readonly description: string;
  /** Worker threads embedding (0: on the calling thread). */
  readonly workers: number;
  /** The tfjs backend of this process. */
  readonly backend: BackendChoice['name'];
  /** Multiply-adds per frame when known (from the ONNX export's sidecar). */
  readonly macsPerFrame: number | undefined;
  /** Why a faster engine was not used, if one was skipped. */
  readonly fallback: string | undefined;
  /** The pool, when there is one (stats, tests). */
  readonly pool: EmbeddingPool | undefined;
  /** The int8 ONNX file it runs, when its precision is int8 (the per-bundle label check keys on its bytes). */
  readonly int8File?: string;
  /** Disposes and, for worker threads, resolves once they have exited. */
  close(): Promise<void>;
}

export function parseEngineRequest(value: string | undefined): EngineRequest {
  if (value === undefined || value === '') return 'auto';
  if ((ENGINES as readonly string[]).includes(value)) return value as EngineRequest;
  throw new FramewiseError(ErrorCodes.USAGE, `unknown engine "${value}": use one of ${ENGINES.join(', ')}`);
}

/** A workers count as typed (`--workers`, FRAMEWISE_WORKERS); undefined or empty means the number of cores. */
export function parseWorkers(value: string | number | undefined): number {
  if (value === undefined || value === '') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new FramewiseError(ErrorCodes.USAGE, `workers must be an integer in [1, 64], got "${value}"`);
  return n;
}

const printed = new Set<string>();

export async function loadEmbeddingEngine(config: EngineConfig = {}): Promise<EngineEmbedder> {
  const request = config.engine ?? 'auto';
  parseEngineRequest(request);
  const id = config.id ?? DEFAULTS.embedder;
  embedderInfo(id);
  const workers = config.workers ?? availableParallelism();
  parseWorkers(workers);
  const log = config.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const say = (line: string) => {
    if (printed.has(line)) return;
    printed.add(line);
    log(line);
  };
  // The head runs on this backend whatever the engine, and auto's first rung depends on it.
  const backend = await ensureBackend(config.backend ?? 'auto');

  const precision = config.precision ?? 'auto';
  parsePrecisionRequest(precision);
  if (precision === 'int8' && request === 'tfjs')
    throw new FramewiseError(ErrorCodes.USAGE, '--precision int8 runs on the ONNX engine: use --engine onnx or auto');

  let fallback: string | undefined;
  const wantOnnx = request === 'onnx' || precision === 'int8' || (request === 'auto' && backend.name !== 'node-gpu');
  if (wantOnnx) {
    try {
      const e = await loadOnnx(config, id, backend, workers, precision, say);
      say(`framewise: embedding engine onnx for ${id} (${e.description})${request === 'auto' ? ', the fastest available here' : ''}`);
      return e;
    } catch (err) {
      if (request === 'onnx') throw forcedOnnxError(err);
      if (precision === 'int8')
        throw new FramewiseError(err instanceof FramewiseError ? err.code : ErrorCodes.BACKEND_UNAVAILABLE, `--precision int8: ${oneLine(err)}`, {
          cause: err,
        });
      fallback = `ONNX Runtime not used: ${oneLine(err)}`;
      say(`framewise: ${fallback}; falling back to tfjs`);
    }
  }
  if (precision === 'auto') say(`framewise: precision fp32 for ${id} (auto: the tfjs engine computes in fp32)`);
  const e = await loadTfjs(config, id, backend, workers, fallback);
  say(
    `framewise: embedding engine tfjs for ${id} (${e.description})${request === 'auto' && backend.name === 'node-gpu' ? ', the fastest available here' : ''}`,
  );
  return e;
}

/** int8's file when int8 is asked for or auto finds it worth it; undefined for fp32. The choice is printed. */
async function int8File(config: EngineConfig, id: string, precision: PrecisionRequest, say: (l: string) => void): Promise<string | undefined> {
  if (precision === 'fp32') {
    say(`framewise: precision fp32 for ${id} (asked for)`);
    return undefined;
  }
  const { ensureInt8, findInt8 } = await import('./onnx/int8-cache.ts');
  const { describeAgreement } = await import('./onnx/int8-agreement.ts');
  if (precision === 'int8') {
    const ready = await ensureInt8({
      id,
      modelsDir: config.modelsDir,
      cacheDir: config.cacheDir,
      calibrate: config.calibrate,
      runInputs: config.calibrationInputs,
      log: config.onProgress ?? say,
      beforeTfjs: () => ensureBackend(config.backend).then(() => {}),
    });
    say(`framewise: precision int8 for ${id} (forced; ${describeAgreement(ready.sidecar.agreement)}; ${ready.path})`);
    return ready.path;
  }
  const found = await findInt8(id, config.cacheDir, config.modelsDir);
  const choice = chooseAutoPrecision(id, found && { ok: found.sidecar.agreement.ok, ...found.sidecar.speed });
  say(`framewise: precision ${choice.precision} for ${id} (auto: ${choice.reason})`);
  return choice.precision === 'int8' ? found!.path : undefined;
}

async function loadOnnx(
  config: EngineConfig,
  id: string,
  backend: BackendChoice,
  workers: number,
  precisionRequest: PrecisionRequest = 'fp32',
  say: (l: string) => void = () => {},
): Promise<EngineEmbedder> {
  const isolate = config.isolate ?? true;
  const threads = config.threads ?? (isolate ? Math.max(1, Math.floor(availableParallelism() / workers)) : availableParallelism());
  const quantized = config.onnxFile ? undefined : await int8File(config, id, precisionRequest, say);
  const precision: Precision = quantized ? 'int8' : 'fp32';
  const file = quantized ?? config.onnxFile;
  const onnxConfig: OnnxEmbedderConfig = {
    id,
    modelsDir: config.modelsDir,
    cacheDir: config.cacheDir,
    backend: backend.name,
    threads,
    batchSize: config.batchSize,
    ...(file ? { file } : {}),
  };
  // Imported lazily: onnxruntime-node is a native package that may be absent or broken.
  let mod: typeof import('./onnx/onnx-engine.ts');
  try {
    mod = await (config.importOnnx ?? (() => import('./onnx/onnx-engine.ts')))();
  } catch (err) {
    throw new FramewiseError(ErrorCodes.BACKEND_UNAVAILABLE, `onnxruntime-node cannot be loaded (${oneLine(err)}); reinstall it with npm ci`, { cause: err });
  }
  if (isolate) {
    // Exported and verified once, here; the workers then open the file its sidecar vouches for.
    await mod.prepareOnnx({ ...onnxConfig, onProgress: config.onProgress });
    const pool = await createEmbeddingPool({
      size: workers,
      // Per worker: a call of embedBatch frames is split between the workers.
      batchSize: config.batchSize,
      log: config.onProgress,
      factory: { module: FACTORIES_MODULE, exportName: 'loadOnnxInWorker', config: { ...onnxConfig, backend: backend.name } },
    });
    return {
      ...fromPool(
        pool,
        'onnx',
        `onnxruntime-node${precision === 'int8' ? ' int8' : ''}, ${workers} worker thread(s) x ${threads} intra-op thread(s)`,
        backend,
        undefined,
        precision,
      ),
      ...(quantized ? { int8File: quantized } : {}),
    };
  }
  const e = await mod.loadOnnxEmbedder({ ...onnxConfig, onProgress: config.onProgress });
  const wrapped = wrap(e, {
    engine: 'onnx',
    precision,
    description: `onnxruntime-node${precision === 'int8' ? ' int8' : ''}, ${threads} thread(s)`,
    workers: 0,
    backend: backend.name,
    macsPerFrame: e.macsPerFrame,
    fallback: undefined,
    pool: undefined,
  });
  return quantized ? { ...wrapped, int8File: quantized } : wrapped;
}

async function loadTfjs(config: EngineConfig, id: string, backend: BackendChoice, workers: number, fallback: string | undefined): Promise<EngineEmbedder> {
  // Native tfjs backends use every core from one instance; a pool only helps the one-thread wasm/cpu backends.
  const pooled = workers > 1 && (backend.name === 'wasm' || backend.name === 'cpu');
  if (pooled) {
    const pool = await createEmbeddingPool({
      size: workers,
      batchSize: config.batchSize,
      log: config.onProgress,
      factory: {
        module: FACTORIES_MODULE,
        exportName: 'loadTfjsInWorker',
        config: {
          id,
          modelsDir: config.modelsDir,
          cacheDir: config.cacheDir,
          allowDownload: config.allowDownload,
          batchSize: config.batchSize,
          backend: backend.name,
        },
      },
    });
    return fromPool(pool, 'tfjs', `tfjs ${backend.name}, ${workers} worker threads`, backend, fallback, 'fp32');
  }
  const e = await loadEmbedder({
    id,
    modelsDir: config.modelsDir,
    cacheDir: config.cacheDir,
    backend: backend.name,
    allowDownload: config.allowDownload,
    batchSize: config.batchSize,
    onProgress: config.onProgress,
  });
  const native = backend.name === 'node' || backend.name === 'node-gpu';
  return wrap(e, {
    engine: 'tfjs',
    precision: 'fp32',
    description: `tfjs ${backend.name}, ${native ? 'native threads' : 'this thread'}`,
    workers: 0,
    backend: backend.name,
    macsPerFrame: undefined,
    fallback,
    pool: undefined,
  });
}

/**
 * The precision a request will run at, without loading the model: what auto would choose (reads
 * the int8 export's record only). For keys that must be known before loading (embedding caches).
 */
export async function resolvePrecision(id: string, request: PrecisionRequest, o: { cacheDir?: string; modelsDir?: string } = {}): Promise<Precision> {
  if (request !== 'auto') return request;
  const { findInt8 } = await import('./onnx/int8-cache.ts');
  const found = await findInt8(id, o.cacheDir, o.modelsDir).catch(() => undefined);
  return chooseAutoPrecision(id, found && { ok: found.sidecar.agreement.ok, ...found.sidecar.speed }).precision;
}

type Meta = Pick<EngineEmbedder, 'engine' | 'precision' | 'description' | 'workers' | 'backend' | 'macsPerFrame' | 'fallback' | 'pool'>;

function wrap(e: Embedder, meta: Meta): EngineEmbedder {
  return {
    id: e.id,
    dim: e.dim,
    inputSize: e.inputSize,
    ...meta,
    embed: (frames) => e.embed(frames),
    classify: (frame, topK) => e.classify(frame, topK),
    dispose: () => e.dispose(),
    close: async () => e.dispose(),
  };
}

function fromPool(
  pool: EmbeddingPool,
  engine: 'tfjs' | 'onnx',
  description: string,
  backend: BackendChoice,
  fallback: string | undefined,
  precision: Precision,
): EngineEmbedder {
  return {
    ...wrap(pool, { engine, precision, description, workers: pool.size, backend: backend.name, macsPerFrame: pool.macsPerFrame, fallback, pool }),
    close: () => pool.close(),
  };
}

function forcedOnnxError(err: unknown): FramewiseError {
  if (err instanceof FramewiseError) return new FramewiseError(err.code, `--engine onnx: ${err.message}`, { cause: err });
  return new FramewiseError(ErrorCodes.BACKEND_UNAVAILABLE, `--engine onnx: ${oneLine(err)}`, { cause: err });
}

function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const code = err instanceof FramewiseError ? ` [${err.code}]` : '';
  return msg.split('\n')[0]!.slice(0, 300) + code;
}
