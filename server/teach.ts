// The Teach view's server side: activities and their recorded clips (teach-store.ts), one training
// at a time in a worker thread (teach-train-worker.ts) with its progress sent to every session,
// and the swap to the new bundle when it is done (live-model.ts). HTTP routes:
//
//   GET    /api/teach                          activities, clips, bundles, the training's last progress
//   POST   /api/teach/classes                  {"name"}: a new activity
//   DELETE /api/teach/classes/<name>           an activity and its clips
//   POST   /api/teach/clips?class=<name>       the body is one recording (video/webm or video/mp4)
//   GET    /api/teach/clips/<name>/<clip>      a recording;  DELETE: removes it
//   POST   /api/teach/train                    {"epochs"?, "hidden"?, ...}: 202, or E_BUSY while one runs
//   GET    /api/teach/dataset.tar              the clips as a folder-per-class dataset
//   GET    /api/teach/bundles/<run>.tar        a trained bundle (with its report)
//   POST   /api/teach/bundles/<run>/load       makes an earlier bundle the current model again
import type { IncomingMessage, ServerResponse } from 'node:http';
import { rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { BackendRequest } from '../models/backend.ts';
import type { EngineRequest } from '../models/engine-choice.ts';
import { asFramewiseError, ErrorCodes, FramewiseError } from '../core/errors.ts';
import { resolveTrainConfig, type TrainConfig } from '../training/config.ts';
import { json, readJson, sendFile } from './http.ts';
import type { LiveModel } from './live-model.ts';
import type { ModelInfo, TeachEpoch, TeachMessage } from './protocol.ts';
import { writeTar } from './tar-writer.ts';
import { TEACH_LIMITS, TeachStore } from './teach-store.ts';
import type { TrainerMessage, TrainJob } from './teach-train-worker.ts';

// Plain-JS boot of a worker thread that registers tsx, then imports `entry` (models/pool has why).
const BOOT = new URL('../models/pool/worker-boot.mjs', import.meta.url);
const WORKER_ENTRY = new URL('./teach-train-worker.ts', import.meta.url).href;

export interface TeachConfig {
  dir: string;
  live: LiveModel;
  embedderId: string;
  modelsDir: string | undefined;
  cacheDir: string;
  backend: BackendRequest | undefined;
  /** The training thread's embedding engine (one thread of it); default auto. */
  engine: EngineRequest | undefined;
  log: (line: string) => void;
  /** Start with the bundle in use when the server last stopped (no --model given). */
  loadLast: boolean;
}

/** Training options a Teach request may set; everything else is `framewise train`'s default. */
const OVERRIDES: Record<string, { key: keyof TrainConfig; min: number; max: number; int: boolean }> = {
  epochs: { key: 'epochs', min: 1, max: 500, int: true },
  hidden: { key: 'hidden', min: 1, max: 1024, int: true },
  augCopies: { key: 'augCopies', min: 0, max: 10, int: true },
  valSplit: { key: 'valSplit', min: 0, max: 0.9, int: false },
  folds: { key: 'folds', min: 0, max: 10, int: true },
  inputNorm: { key: 'inputNorm', min: 0, max: 1, int: false },
  patience: { key: 'patience', min: 0, max: 500, int: true },
  seed: { key: 'seed', min: 0, max: 2 ** 31 - 1, int: true },
};

interface Run {
  id: string;
  dir: string;
  worker: Worker;
  message: TeachMessage;
}

export class Teach {
  readonly store: TeachStore;
  private run: Run | undefined;
  /** The last progress message (of the running or the last finished training). */
  private last: TeachMessage | undefined;
  private readonly listeners = new Set<(m: TeachMessage) => void>();
  private closed = false;

  constructor(private readonly c: TeachConfig) {
    this.store = new TeachStore(c.dir);
  }

  get training(): boolean {
    return this.run !== undefined;
  }

  onMessage(fn: (m: TeachMessage) => void): void {
    this.listeners.add(fn);
  }

  /** Starts a training on the recorded clips; E_BUSY while one runs. */
  train(options: Record<string, unknown> = {}): TeachMessage {
    if (this.run) {
      const m = this.run.message;
      throw new FramewiseError(ErrorCodes.BUSY, `a training is already running (${m.runId}, epoch ${m.epoch} of ${m.epochs}): wait for it to end`);
    }
    const classes = this.store.trainableClasses();
    if (classes.length < 2)
      throw new FramewiseError(
        ErrorCodes.USAGE,
        `record clips of at least two activities first (${classes.length ? `only "${classes[0]}" has clips` : 'no clips yet'})`,
      );
    const overrides: Partial<TrainConfig> = {};
    for (const [name, value] of Object.entries(options)) {
      const o = OVERRIDES[name];
      if (!o) throw new FramewiseError(ErrorCodes.USAGE, `unknown training option "${name}" (known: ${Object.keys(OVERRIDES).join(', ')})`);
      if (typeof value !== 'number' || !(value >= o.min && value <= o.max) || (o.int && !Number.isInteger(value))) {
        throw new FramewiseError(ErrorCodes.USAGE, `training option ${name} must be ${o.int ? 'an integer' : 'a number'} in [${o.min}, ${o.max}]`);
      }
      (overrides as Record<string, number>)[o.key] = value;
    }
    const { id, dir } = this.store.newRun();
    const config = resolveTrainConfig({
      ...overrides,
      data: this.store.dataDir,
      out: dir,
      embedder: this.c.embedderId,
      modelsDir: this.c.modelsDir,
      cacheDir: this.c.cacheDir,
    });
    const job: TrainJob = { entry: WORKER_ENTRY, config: { ...config }, backend: this.c.backend, engine: this.c.engine };
    const worker = new Worker(BOOT, { workerData: job, execArgv: [] });
    const message: TeachMessage = {
      type: 'teach',
      streamId: 'teach',
      index: -1,
      timestampMs: 0,
      status: 'preparing',
      runId: id,
      epoch: 0,
      epochs: config.epochs,
      etaSeconds: null,
      history: [],
    };
    const run: Run = { id, dir, worker, message };
    this.run = run;
    this.c.log(`teach: training ${id} on ${classes.length} activities (${classes.join(', ')}), ${config.epochs} epochs at most`);
    let ended = false;
    const end = (err?: FramewiseError) => {
      if (ended) return;
      ended = true;
      void worker.terminate();
      if (err) this.fail(run, err);
      else void this.finish(run);
    };
    worker.on('message', (m: TrainerMessage) => {
      if (m.type === 'log') this.c.log(`teach: ${m.line}`);
      else if (m.type === 'training') this.emit(run, { status: 'training' });
      else if (m.type === 'epoch') {
        const r = m.record;
        const e: TeachEpoch = {
          epoch: r.epoch,
          trainLoss: r.trainLoss,
          trainAccuracy: r.trainAccuracy,
          valLoss: finite(r.valLoss),
          valAccuracy: finite(r.valAccuracy),
          seconds: r.seconds,
        };
        this.emit(run, {
          status: 'training',
          epoch: r.epoch,
          epochs: m.epochs,
          etaSeconds: Math.round((m.epochs - r.epoch) * r.seconds),
          history: [...run.message.history, e],
        });
      } else if (m.type === 'done') end();
      else if (m.type === 'failed') end(new FramewiseError(ErrorCodes.TRAINING_FAILED, m.message));
    });
    worker.on('error', (err) => end(asFramewiseError(err, ErrorCodes.TRAINING_FAILED, 'the training thread failed')));
    worker.on('exit', (code) =>
      end(new FramewiseError(ErrorCodes.TRAINING_FAILED, `the training thread stopped (exit code ${code}) before the bundle was written`)),
    );
    this.emit(run, {});
    return run.message;
  }

  /** Makes an earlier bundle current again. */
  async load(id: string): Promise<ModelInfo> {
    const info = await this.c.live.load(this.store.bundleDir(id));
    this.store.current = id;
    this.c.log(`teach: bundle ${id} is the current model (${info.classes.join(', ')})`);
    return info;
  }

  /** Stops a running training (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    const run = this.run;
    this.run = undefined;
    if (run) await run.worker.terminate();
  }

  async route(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (path !== '/api/teach' && !path.startsWith('/api/teach/')) return false;
    const method = req.method ?? 'GET';
    const parts = path
      .split('/')
      .filter(Boolean)
      .map((p) => decodeURIComponent(p)); // ['api', 'teach', ...]
    const url = new URL(req.url ?? '/', 'http://localhost');
    const [, , what, a, b] = parts;
    const n = parts.length;
    if (n === 2 && method === 'GET') return ok(res, 200, this.overview());
    if (what === 'classes') {
      if (n === 3 && method === 'POST') return ok(res, 201, { classes: this.store.addClass((await readJson(req)).name) });
      if (n === 4 && method === 'DELETE') {
        this.notWhileTraining();
        return ok(res, 200, { classes: this.store.removeClass(a!) });
      }
    }
    if (what === 'clips') {
      if (n === 3 && method === 'POST') {
        // An upload refused before its end leaves body bytes on the connection: close it after the answer.
        res.setHeader('Connection', 'close');
        this.notWhileTraining();
        const type = String(req.headers['content-type'] ?? '');
        const ext = /^video\/webm\b/.test(type) ? 'webm' : /^video\/mp4\b/.test(type) ? 'mp4' : undefined;
        if (!ext) throw new FramewiseError(ErrorCodes.USAGE, `a clip is sent as video/webm or video/mp4, got "${type}"`);
        const length = Number(req.headers['content-length'] ?? 0);
        if (length > TEACH_LIMITS.maxClipBytes)
          throw new FramewiseError(ErrorCodes.USAGE, `a clip may have at most ${TEACH_LIMITS.maxClipBytes / 1024 / 1024} MiB`);
        const clip = await this.store.addClip(url.searchParams.get('class') ?? '', req, ext);
        res.removeHeader('Connection');
        return ok(res, 201, { clip, classes: this.store.classes() });
      }
      if (n === 5 && (method === 'GET' || method === 'HEAD')) {
        sendFile(req, res, this.store.clipPath(a!, b!));
        return true;
      }
      if (n === 5 && method === 'DELETE') {
        this.notWhileTraining();
        this.store.removeClip(a!, b!);
        return ok(res, 200, { classes: this.store.classes() });
      }
    }
    if (what === 'train' && n === 3 && method === 'POST') return ok(res, 202, { training: this.train(await readJson(req)) });
    if (what === 'dataset.tar' && n === 3 && method === 'GET') {
      tarHeaders(res, 'teach-dataset.tar');
      await writeTar(this.store.dataDir, 'teach-dataset', res);
      return true;
    }
    if (what === 'bundles' && n === 4 && method === 'GET' && a!.endsWith('.tar')) {
      const id = a!.slice(0, -4);
      const dir = this.store.bundleDir(id);
      tarHeaders(res, `${id}.tar`);
      await writeTar(dir, id, res, new Set(['checkpoint']));
      return true;
    }
    if (what === 'bundles' && n === 5 && b === 'load' && method === 'POST') {
      if (this.run) throw new FramewiseError(ErrorCodes.BUSY, 'a training is running: load a bundle when it has ended');
      return ok(res, 200, { model: await this.load(a!), bundles: this.store.bundles() });
    }
    throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no API ${method} ${path}`);
  }

  private overview() {
    return {
      embedderId: this.c.embedderId,
      classes: this.store.classes(),
      limits: TEACH_LIMITS,
      training: this.run?.message ?? this.last ?? null,
      bundles: this.store.bundles(),
      model: this.c.live.hasModel ? this.c.live.info : null,
    };
  }

  private notWhileTraining(): void {
    if (this.run) throw new FramewiseError(ErrorCodes.BUSY, 'a training is reading the clips: change them when it has ended');
  }

  private emit(run: Run, patch: Partial<TeachMessage>): void {
    run.message = { ...run.message, ...patch };
    this.last = run.message;
    if (this.closed) return;
    for (const l of this.listeners) l(run.message);
  }

  private async finish(run: Run): Promise<void> {
    try {
      const model = await this.c.live.load(run.dir);
      this.store.current = run.id;
      this.run = undefined;
      this.c.log(`teach: ${run.id} is live (${model.classes.join(', ')})`);
      this.emit(run, { status: 'ready', etaSeconds: 0, model });
    } catch (err) {
      this.fail(run, asFramewiseError(err, ErrorCodes.TRAINING_FAILED, 'the trained bundle could not be loaded'));
    }
  }

  private fail(run: Run, err: FramewiseError): void {
    if (this.run === run) this.run = undefined;
    rmSync(run.dir, { recursive: true, force: true });
    this.c.log(`teach: ${run.id} failed: ${err.message} (the previous model stays in use)`);
    this.emit(run, { status: 'failed', etaSeconds: null, error: { code: err.code, message: err.message } });
  }
}

export async function openTeach(c: TeachConfig): Promise<Teach> {
  const teach = new Teach(c);
  const last = teach.store.current;
  if (c.loadLast && last) {
    try {
      await teach.load(last);
    } catch (err) {
      c.log(`teach: the last bundle ${last} could not be loaded (${(err as Error).message}); teach a new one`);
    }
  }
  return teach;
}

function ok(res: ServerResponse, status: number, body: unknown): true {
  json(res, status, body);
  return true;
}

function tarHeaders(res: ServerResponse, name: string): void {
  res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Content-Disposition': `attachment; filename="${name}"`, 'Cache-Control': 'no-store' });
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
