// The HTTP side of `framewise serve`: the built client (static files), a small JSON API, and
// video files with byte-range support (the browser's <video> seeks with Range requests).
//
//   GET  /api/info                model, limits, whether a media folder is served
//   GET  /api/media               video files in the media folder (relative paths)
//   GET  /api/jobs                all jobs;  GET /api/jobs/:id  one job
//   POST /api/jobs                {"path": "<relative to --media>"}  -> 202 job
//   POST /api/jobs?name=<file>    raw video bytes as the body (an upload) -> 202 job
//   GET  /api/jobs/:id/video      the job's video (ranges);  GET /api/jobs/:id/playback  its H.264 copy
//                                 when the browser cannot play the original;  GET /api/jobs/:id/files/<kind>  outputs
//   GET  /media/<path>            a file of the media folder (ranges)
// Errors are JSON {code, message} with a status derived from the code.
import { createReadStream, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, extname, resolve, sep } from 'node:path';
import { ErrorCodes, FramewiseError, type ErrorCode } from '../core/errors.ts';
import type { AccessPolicy } from './access.ts';
import type { JobManager } from './jobs.ts';
import type { MediaRoot } from './paths.ts';
import type { Limits, ModelInfo } from './protocol.ts';
import { PROTOCOL_VERSION, WS_PATH } from './protocol.ts';
import { publicMessage } from './public-message.ts';

export interface HttpConfig {
  clientDir: string;
  model: ModelInfo;
  limits: Limits;
  media: MediaRoot | undefined;
  jobs: JobManager;
  log: (line: string) => void;
  /** Host, Origin and token checks, run before any request is handled. */
  access: AccessPolicy;
  /** The port the server listens on (known once bound). */
  port: () => number;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.mov': 'video/quicktime',
  '.ogv': 'video/ogg',
  '.avi': 'video/x-msvideo',
  '.jsonl': 'application/x-ndjson; charset=utf-8',
  '.vtt': 'text/vtt; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.wasm': 'application/wasm',
};

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.USAGE]: 400,
  [ErrorCodes.PROTOCOL]: 400,
  [ErrorCodes.FORBIDDEN]: 403,
  [ErrorCodes.UNAUTHORIZED]: 401,
  [ErrorCodes.INPUT_NOT_FOUND]: 404,
  [ErrorCodes.BUSY]: 503,
  [ErrorCodes.NO_MODEL]: 409,
};

export function httpHandler(config: HttpConfig): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(config, req, res).catch((err: unknown) => sendError(res, err));
  };
}

async function handle(c: HttpConfig, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const cookie = c.access.check(req, c.port());
  if (cookie) res.setHeader('Set-Cookie', cookie);
  const url = new URL(req.url ?? '/', 'http://localhost');
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    throw new FramewiseError(ErrorCodes.USAGE, 'malformed URL encoding');
  }
  const method = req.method ?? 'GET';
  if (path.startsWith('/api/')) return api(c, method, path, url, req, res);
  if (method !== 'GET' && method !== 'HEAD') throw new FramewiseError(ErrorCodes.USAGE, `${method} is not supported here`);
  if (path.startsWith('/media/')) {
    if (!c.media) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, 'no media folder is served (start with --media DIR)');
    return sendFile(req, res, c.media.resolve(path.slice('/media/'.length)));
  }
  if (path === WS_PATH) throw new FramewiseError(ErrorCodes.USAGE, `${WS_PATH} is the WebSocket endpoint`);
  return sendStatic(c, req, res, path);
}

async function api(c: HttpConfig, method: string, path: string, url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parts = path.split('/').filter(Boolean); // ['api', ...]
  if (method === 'GET' && path === '/api/info') {
    return json(res, 200, { version: PROTOCOL_VERSION, model: c.model, limits: c.limits, media: c.media !== undefined, ws: WS_PATH });
  }
  if (method === 'GET' && path === '/api/media') return json(res, 200, { files: c.media ? c.media.list() : [] });
  if (parts[1] === 'jobs') {
    if (parts.length === 2 && method === 'GET') return json(res, 200, { jobs: c.jobs.list() });
    if (parts.length === 2 && method === 'POST') {
      const name = url.searchParams.get('name');
      if (name !== null) return json(res, 202, { job: await c.jobs.createFromUpload(name, req) });
      const body = await readJson(req);
      if (typeof body.path !== 'string')
        throw new FramewiseError(ErrorCodes.USAGE, 'POST /api/jobs needs {"path": "<file in the media folder>"} or an upload with ?name=');
      return json(res, 202, { job: c.jobs.createFromMedia(body.path) });
    }
    const id = parts[2]!;
    const job = c.jobs.get(id);
    if (!job) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no job ${id}`);
    if (method !== 'GET' && method !== 'HEAD') throw new FramewiseError(ErrorCodes.USAGE, `${method} is not supported here`);
    if (parts.length === 3) return json(res, 200, { job });
    if (parts.length === 4 && parts[3] === 'video') return sendFile(req, res, c.jobs.videoPath(id)!);
    if (parts.length === 4 && parts[3] === 'playback') {
      const copy = c.jobs.playbackPath(id);
      if (!copy) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `job ${id} has no playback copy (yet)`);
      return sendFile(req, res, copy);
    }
    if (parts.length === 5 && parts[3] === 'files') {
      const file = c.jobs.filePath(id, parts[4]!);
      if (!file) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `job ${id} has no ${parts[4]} file (yet)`);
      return sendFile(req, res, file, basename(file));
    }
  }
  throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no API ${method} ${path}`);
}

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > 64 * 1024) throw new FramewiseError(ErrorCodes.USAGE, 'JSON body too large');
    chunks.push(chunk);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new FramewiseError(ErrorCodes.USAGE, 'the body must be a JSON object');
}

function sendStatic(c: HttpConfig, req: IncomingMessage, res: ServerResponse, path: string): void {
  const root = resolve(c.clientDir);
  const file = resolve(root, '.' + (path === '/' ? '/index.html' : path));
  if (file !== root && !file.startsWith(root + sep)) throw new FramewiseError(ErrorCodes.FORBIDDEN, 'outside the client folder');
  try {
    if (!statSync(file).isFile()) throw new Error('not a file');
  } catch {
    throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `not found: ${path}`);
  }
  sendFile(req, res, file);
}

/** Streams a file, honouring a single `Range: bytes=a-b` (multi-range requests get the whole file). */
export function sendFile(req: IncomingMessage, res: ServerResponse, file: string, downloadName?: string): void {
  const size = statSync(file).size;
  const headers: Record<string, string | number> = {
    'Content-Type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-cache',
  };
  if (downloadName) headers['Content-Disposition'] = `attachment; filename="${downloadName.replace(/["\\\r\n]/g, '_')}"`;
  const range = req.headers.range;
  let start = 0;
  let end = size - 1;
  let status = 200;
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (m && (m[1] !== '' || m[2] !== '')) {
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        end = m[2] === '' ? size - 1 : Math.min(size - 1, Number(m[2]));
      }
      if (start >= size || start > end) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
  }
  headers['Content-Length'] = size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(file, { start, end });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): void {
  const e = err instanceof FramewiseError ? err : new FramewiseError(ErrorCodes.USAGE, (err as Error)?.message ?? String(err));
  if (res.headersSent) {
    res.destroy();
    return;
  }
  json(res, STATUS[e.code] ?? 500, { code: e.code, message: publicMessage(e.message) });
}
