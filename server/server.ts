// `framewise serve` as a library: one Node process, one port. An HTTP server answers the client
// files, the JSON API and /media; `ws` in noServer mode takes the upgrades on WS_PATH. The model
// (embedder + recurrent head) is loaded once and shared by every session and job.
import { mkdirSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import type { BackendRequest } from '../models/backend.ts';
import type { EngineRequest } from '../models/engine-choice.ts';
import type { PrecisionRequest } from '../models/precision.ts';
import type { Embedder } from '../models/embedder.ts';
import { ensureBackend } from '../models/backend.ts';
import { loadEmbeddingEngine } from '../models/engine-choice.ts';
import { openModel } from '../models/open-model.ts';
import type { BundleMeta } from '../models/recurrent/bundle.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { accessPolicy, isLoopback, type AccessPolicy } from './access.ts';
import { deviceRoutes } from './device-routes.ts';
import { httpHandler, sendError } from './http.ts';
import { LiveModel } from './live-model.ts';
import { openTeach, type Teach } from './teach.ts';
import { JobManager } from './jobs.ts';
import type { LiveScheduler } from '../pipeline/live-scheduler.ts';
import { mediaRoot } from './paths.ts';
import { FRAME_FORMATS, maxFrameBytes, WS_PATH, type Limits, type ModelInfo } from './protocol.ts';
import { Sessions } from './sessions.ts';

// The package root is one folder up from the sources and two from the build (dist/server/).
export const CLIENT_DIST = resolve(fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../client/dist' : '../../client/dist', import.meta.url)));

/** A loaded model, for callers (tests, benchmarks) that load once and serve several times. */
export interface LoadedModel {
  embedder: Embedder;
  head: RecurrentHead;
  meta: Pick<BundleMeta, 'classes' | 'embedderId' | 'fps' | 'crop' | 'unknownBelow' | 'unknownFar'>;
  /** Its bundle folder, if it has one (the on-device client loads the files; else they are written once). */
  bundleDir?: string;
}

export interface ServerConfig {
  /**
   * A bundle folder (loaded, with its embedder) or an already loaded model (not disposed by
   * close); absent: teach only (`embedder` is loaded, live labels wait for a taught model).
   */
  model?: string | LoadedModel;
  /** Without `model`: the embedder to teach with (default DEFAULTS.embedder). */
  embedder?: string;
  /** The Teach view's folder (clips as a folder-per-class dataset, trained bundles); no Teach view without it. */
  teachDir?: string;
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
  /** A socket that has not sent hello this long after connecting is closed; default DEFAULTS.serve.helloTimeoutMs. */
  helloTimeoutMs?: number;
  /** Every client must present it (?token=, the cookie that sets, or Authorization: Bearer). */
  token?: string;
  /** Serve a non-loopback address without a token (refused otherwise). */
  noAuth?: boolean;
  /** Origins besides the server's own that may open sockets and send requests. */
  allowOrigins?: readonly string[];
  /** Host names answered besides the loopback names and the bound address. */
  allowHosts?: readonly string[];
  /** Most live frames per embedder call; default = maxSessions (every waiting session in one call). */
  maxBatch?: number;
  /** Default DEFAULTS.serve.coalesceBytes. */
  coalesceBytes?: number;
  /** Stats message period per live session, ms (default 1000). */
  statsMs?: number;
  /** Job outputs and uploads, kept after close; default a fresh folder under cacheDir, else the OS
   * temp dir, removed by close. */
  jobsDir?: string;
  modelsDir?: string;
  /** Cache root for weights, ONNX exports, the Teach trainer's embeddings and playable copies of
   * videos browsers cannot play (default DEFAULTS.cacheDir); temporary job folders go under it too. */
  cacheDir?: string;
  backend?: BackendRequest;
  /** Embedding engine and wasm worker threads for a bundle loaded here (models/engine-choice.ts defaults). */
  engine?: EngineRequest;
  /** Embedder precision (models/precision.ts); default auto. */
  precision?: PrecisionRequest;
  workers?: number;
  log?: (line: string) => void;
  /** Overrides the bundle's `unknownBelow` for live streams and file jobs (0: never unknown). */
  unknownBelow?: number;
}

export interface RunningServer {
  /** http://host:port */
  readonly url: string;
  /** The token clients must present, when the server has one. */
  readonly token: string | undefined;
  /** The URL to open in a browser: `url`/ with the token when there is one. */
  readonly openUrl: string;
  readonly port: number;
  readonly model: ModelInfo;
  /** The current model's live scheduler (E_NO_MODEL on a teach-only server before training). */
  readonly scheduler: LiveScheduler;
  /** The Teach view's state (with teachDir). */
  readonly teach: Teach | undefined;
  readonly sessionCount: () => number;
  /** Where job outputs and uploads go. */
  readonly jobsDir: string;
  /** Closes sockets, jobs and the port (and the model if the server loaded it), and removes the
   * jobs folder unless the caller named it. Idempotent. */
  close(): Promise<void>;
}

export async function createServer(config: ServerConfig): Promise<RunningServer> {
  const log = config.log ?? (() => {});
  const maxSessions = config.maxSessions ?? DEFAULTS.serve.maxSessions;
  if (!Number.isInteger(maxSessions) || maxSessions < 1)
    throw new FramewiseError(ErrorCodes.USAGE, `maxSessions must be a positive integer, got ${maxSessions}`);
  const media = config.mediaDir !== undefined ? mediaRoot(config.mediaDir) : undefined;
  const host = config.host ?? DEFAULTS.serve.host;
  if (config.token !== undefined && !/^[\w.~-]{16,256}$/.test(config.token)) {
    throw new FramewiseError(ErrorCodes.USAGE, 'the token must be 16 to 256 characters of letters, digits, "-", "_", "." or "~"');
  }
  if (!isLoopback(host) && config.token === undefined && !config.noAuth) {
    throw new FramewiseError(
      ErrorCodes.USAGE,
      `serving ${host} (not loopback) needs a token (--token or FRAMEWISE_TOKEN), or --no-auth to let anyone on the network in`,
    );
  }
  const access = accessPolicy({ host, allowHosts: config.allowHosts, allowOrigins: config.allowOrigins, token: config.token });

  let loaded: LoadedModel | undefined;
  let embedder: Embedder;
  let dispose = () => {};
  if (typeof config.model === 'string') {
    // isolate: ONNX Runtime's run() would otherwise stall this event loop (all sockets) for a whole batch.
    const opened = await openModel({
      bundle: config.model,
      modelsDir: config.modelsDir,
      cacheDir: config.cacheDir,
      backend: config.backend,
      engine: config.engine,
      precision: config.precision,
      workers: config.workers,
      isolate: true,
      onProgress: log,
    });
    loaded = { ...opened, bundleDir: config.model };
    embedder = opened.embedder;
    dispose = () => opened.dispose();
  } else if (config.model) {
    loaded = config.model;
    embedder = loaded.embedder;
  } else {
    await ensureBackend(config.backend);
    const e = await loadEmbeddingEngine({
      id: config.embedder ?? DEFAULTS.embedder,
      modelsDir: config.modelsDir,
      cacheDir: config.cacheDir,
      backend: config.backend,
      engine: config.engine,
      workers: config.workers,
      isolate: true,
      log,
    });
    embedder = e;
    dispose = () => e.dispose();
  }
  // An override of the bundle's unknown threshold (0 turns both checks off), for jobs as for live streams.
  if (loaded && config.unknownBelow !== undefined) {
    loaded = {
      ...loaded,
      meta: config.unknownBelow === 0 ? { ...loaded.meta, unknownBelow: 0, unknownFar: undefined } : { ...loaded.meta, unknownBelow: config.unknownBelow },
    };
  }
  // A folder the caller named is theirs to keep; the default one is ours to remove at close.
  const jobsDir = config.jobsDir ?? join(config.cacheDir ?? tmpdir(), `framewise-serve-${process.pid}-${Date.now().toString(36)}`);
  // The current model, swapped when a taught bundle goes live; the configs below read it through getters.
  let live: LiveModel;
  try {
    mkdirSync(jobsDir, { recursive: true });
    live = new LiveModel(embedder, config.maxBatch ?? maxSessions, jobsDir, loaded);
  } catch (err) {
    dispose();
    throw err;
  }
  const cacheDir = config.cacheDir ?? DEFAULTS.cacheDir;
  let teach: Teach | undefined;
  if (config.teachDir !== undefined) {
    teach = await openTeach({
      dir: config.teachDir,
      live,
      embedderId: embedder.id,
      modelsDir: config.modelsDir,
      cacheDir,
      backend: config.backend,
      engine: config.engine,
      log,
      loadLast: loaded === undefined,
    });
  }
  // Room for the largest valid frame plus slack; an oversized-but-under-this message gets an
  // E_PROTOCOL error, a larger one closes the socket with 1009 (ws does that before we see it).
  const maxPayload = 2 * maxFrameBytes(embedder.inputSize);
  const limits: Limits = { maxPayload, maxInFlight: DEFAULTS.serve.maxInFlight, liveFps: DEFAULTS.serve.liveFps, formats: [...FRAME_FORMATS] };
  const jobs = new JobManager({
    embedder,
    get head() {
      return live.head;
    },
    get meta() {
      return live.meta;
    },
    media,
    jobsDir,
    maxUploadBytes: DEFAULTS.serve.maxUploadBytes,
    cacheDir: config.cacheDir,
    log,
  });
  const sessions = new Sessions({
    get scheduler() {
      return live.scheduler;
    },
    get model() {
      return live.info;
    },
    limits,
    jobs,
    maxSessions,
    heartbeatMs: config.heartbeatMs ?? DEFAULTS.serve.heartbeatMs,
    helloTimeoutMs: config.helloTimeoutMs ?? DEFAULTS.serve.helloTimeoutMs,
    coalesceBytes: config.coalesceBytes ?? DEFAULTS.serve.coalesceBytes,
    statsMs: config.statsMs,
    log,
  });

  let actual = 0;
  const base = httpHandler({
    clientDir: config.clientDir ?? CLIENT_DIST,
    get model() {
      return live.info;
    },
    limits,
    media,
    jobs,
    log,
    access,
    port: () => actual,
  });
  // The on-device and Teach routes answer first; everything else is the base handler's.
  const device = deviceRoutes({ live, modelsDir: config.modelsDir, cacheDir });
  const http = createHttpServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    // Host, Origin and token are checked before any route, these included.
    void (async () => {
      const cookie = access.check(req, actual);
      if (cookie) res.setHeader('Set-Cookie', cookie);
      return (await device(req, res, path)) || (teach !== undefined && (await teach.route(req, res, path)));
    })()
      .then((done) => done || base(req, res))
      .catch((err: unknown) => sendError(res, err));
  });
  teach?.onMessage((msg) => sessions.broadcast(msg));
  const wss = new WebSocketServer({ noServer: true, maxPayload, perMessageDeflate: false });
  wss.on('connection', (ws) => sessions.accept(ws));
  http.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    if (!admitted(access, req, actual, socket, log)) return;
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  const port = config.port ?? DEFAULTS.serve.port;
  await new Promise<void>((ok, fail) => {
    const onError = (err: NodeJS.ErrnoException) =>
      fail(
        new FramewiseError(ErrorCodes.USAGE, `cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'the port is in use (--port)' : err.message}`, {
          cause: err,
        }),
      );
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      ok();
    });
  });
  actual = (http.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${actual}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    token: config.token,
    jobsDir,
    openUrl: config.token !== undefined ? `${url}/?token=${config.token}` : `${url}/`,
    port: actual,
    get model() {
      return live.info;
    },
    get scheduler() {
      return live.scheduler;
    },
    teach,
    sessionCount: () => sessions.count,
    close: () =>
      (closing ??= (async () => {
        sessions.closeAll();
        const jobsStopped = jobs.close();
        await teach?.close();
        wss.close();
        http.closeAllConnections();
        await new Promise<void>((ok) => http.close(() => ok()));
        await jobsStopped;
        await live.close();
        if (config.jobsDir === undefined) rmSync(jobsDir, { recursive: true, force: true });
        dispose();
      })()),
  };
}

/** Runs the access checks on a WebSocket upgrade; a refused one gets its HTTP status and code. */
function admitted(access: AccessPolicy, req: IncomingMessage, port: number, socket: Duplex, log: (line: string) => void): boolean {
  try {
    access.check(req, port);
    return true;
  } catch (err) {
    const e = err instanceof FramewiseError ? err : new FramewiseError(ErrorCodes.FORBIDDEN, String(err));
    log(`refused a WebSocket from ${req.socket.remoteAddress}: ${e.message}`);
    const status = e.code === ErrorCodes.UNAUTHORIZED ? '401 Unauthorized' : '403 Forbidden';
    const body = JSON.stringify({ code: e.code, message: e.message });
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    return false;
  }
}
