// `framewise serve` as a library: one Node process, one port. An HTTP server answers the client
// files, the JSON API and /media; `ws` in noServer mode takes the upgrades on WS_PATH. The model
// (embedder + recurrent head) is loaded once and shared by every session and job.
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import type { BackendRequest } from '../models/backend.ts';
import type { EngineRequest } from '../models/engine-choice.ts';
import type { PrecisionRequest } from '../models/precision.ts';
import type { Embedder } from '../models/embedder.ts';
import { openModel } from '../models/open-model.ts';
import type { BundleMeta } from '../models/recurrent/bundle.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { httpHandler } from './http.ts';
import { JobManager } from './jobs.ts';
import { LiveScheduler } from '../pipeline/live-scheduler.ts';
import { mediaRoot } from './paths.ts';
import { FRAME_FORMATS, maxFrameBytes, WS_PATH, type Limits, type ModelInfo } from './protocol.ts';
import { Sessions } from './sessions.ts';

export const CLIENT_DIST = resolve(fileURLToPath(new URL('../client/dist', import.meta.url)));

/** A loaded model, for callers (tests, benchmarks) that load once and serve several times. */
export interface LoadedModel {
  embedder: Embedder;
  head: RecurrentHead;
  meta: Pick<BundleMeta, 'classes' | 'embedderId' | 'fps' | 'crop'>;
}

export interface ServerConfig {
  /** A bundle folder (loaded, with its embedder) or an already loaded model (not disposed by close). */
  model: string | LoadedModel;
  /** Default DEFAULTS.serve.host (127.0.0.1: only this machine). */
  host?: string;
  /** Default DEFAULTS.serve.port; 0 picks a free port. */
  port?: number;
  /** Folder whose videos clients may label and play; none when absent. */
  mediaDir?: string;
  /** The built client; default client/dist. */
  clientDir?: string;
  /** Default DEFAULTS.serve.maxSessions. */
  maxSessions?: number;
  /** Default DEFAULTS.serve.heartbeatMs. */
  heartbeatMs?: number;
  /** Most live frames per embedder call; default = maxSessions (every waiting session in one call). */
  maxBatch?: number;
  /** Default DEFAULTS.serve.coalesceBytes. */
  coalesceBytes?: number;
  /** Stats message period per live session, ms (default 1000). */
  statsMs?: number;
  /** Job outputs and uploads; default a fresh folder under FRAMEWISE_CACHE or the OS temp dir. */
  jobsDir?: string;
  modelsDir?: string;
  backend?: BackendRequest;
  /** Embedding engine and wasm worker threads for a bundle loaded here (models/engine-choice.ts defaults). */
  engine?: EngineRequest;
  /** Embedder precision (models/precision.ts); default env FRAMEWISE_PRECISION, else auto. */
  precision?: PrecisionRequest;
  workers?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  readonly model: ModelInfo;
  readonly scheduler: LiveScheduler;
  readonly sessionCount: () => number;
  /** Closes sockets, jobs and the port (and the model if the server loaded it). Idempotent. */
  close(): Promise<void>;
}

export async function createServer(config: ServerConfig): Promise<RunningServer> {
  const log = config.log ?? (() => {});
  const maxSessions = config.maxSessions ?? DEFAULTS.serve.maxSessions;
  if (!Number.isInteger(maxSessions) || maxSessions < 1) throw new FramewiseError(ErrorCodes.USAGE, `maxSessions must be a positive integer, got ${maxSessions}`);
  const media = config.mediaDir !== undefined ? mediaRoot(config.mediaDir) : undefined;

  let loaded: LoadedModel;
  let dispose = () => {};
  if (typeof config.model === 'string') {
    // isolate: ONNX Runtime's run() would otherwise stall this event loop (all sockets) for a whole batch.
    const opened = await openModel({ bundle: config.model, modelsDir: config.modelsDir, backend: config.backend, engine: config.engine, precision: config.precision, workers: config.workers, isolate: true, onProgress: log });
    loaded = opened;
    dispose = () => opened.dispose();
  } else {
    loaded = config.model;
  }
  const { embedder, head, meta } = loaded;
  if (head.spec.inputDim !== embedder.dim) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `the head takes ${head.spec.inputDim}-d embeddings, ${embedder.id} gives ${embedder.dim}`);
  }

  const model: ModelInfo = { classes: [...meta.classes], embedderId: meta.embedderId, inputSize: embedder.inputSize, fps: meta.fps, crop: meta.crop };
  // Room for the largest valid frame plus slack; an oversized-but-under-this message gets an
  // E_PROTOCOL error, a larger one closes the socket with 1009 (ws does that before we see it).
  const maxPayload = 2 * maxFrameBytes(embedder.inputSize);
  const limits: Limits = { maxPayload, maxInFlight: DEFAULTS.serve.maxInFlight, liveFps: DEFAULTS.serve.liveFps, formats: [...FRAME_FORMATS] };
  const scheduler = new LiveScheduler(embedder, head, config.maxBatch ?? maxSessions, meta.classes);
  const jobs = new JobManager({
    embedder,
    head,
    meta,
    media,
    jobsDir: config.jobsDir ?? join(process.env.FRAMEWISE_CACHE ?? tmpdir(), `framewise-serve-${process.pid}-${Date.now().toString(36)}`),
    maxUploadBytes: DEFAULTS.serve.maxUploadBytes,
    log,
  });
  const sessions = new Sessions({
    scheduler,
    model,
    limits,
    jobs,
    maxSessions,
    heartbeatMs: config.heartbeatMs ?? DEFAULTS.serve.heartbeatMs,
    coalesceBytes: config.coalesceBytes ?? DEFAULTS.serve.coalesceBytes,
    statsMs: config.statsMs,
    log,
  });

  const http = createHttpServer(httpHandler({ clientDir: config.clientDir ?? CLIENT_DIST, model, limits, media, jobs, log }));
  const wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false });
  wss.on('connection', (ws) => sessions.accept(ws));
  http.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  const host = config.host ?? DEFAULTS.serve.host;
  const port = config.port ?? DEFAULTS.serve.port;
  await new Promise<void>((ok, fail) => {
    const onError = (err: NodeJS.ErrnoException) =>
      fail(new FramewiseError(ErrorCodes.USAGE, `cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use (--port)' : err.message}`, { cause: err }));
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      ok();
    });
  });
  const actual = (http.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${actual}`,
    port: actual,
    model,
    scheduler,
    sessionCount: () => sessions.count,
    close: () =>
      (closing ??= (async () => {
        sessions.closeAll();
        jobs.close();
        wss.close();
        http.closeAllConnections();
        await new Promise<void>((ok) => http.close(() => ok()));
        await scheduler.idle();
        dispose();
      })()),
  };
}
