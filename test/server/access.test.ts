// Who may talk to the server, with real requests on loopback: a foreign Origin can neither open a
// WebSocket nor start a job (a text/plain POST is what a cross-site form sends), a foreign Host
// (DNS rebinding) gets nothing, a server with a token answers nothing without it and takes it as
// ?token= (then as the cookie that sets), as a bearer header or on the WebSocket upgrade; a
// non-loopback bind without a token is refused; error messages name no server path; a socket that
// never says hello loses its session slot.
import { request } from 'node:http';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import type { JobMessage } from '../../server/protocol.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { connectLive, openSocket } from '../../server/ws-client.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';
import { loadTestEmbedder, testModel } from './fixtures.ts';

const TOKEN = 'test-token-0123456789abcdef';
const dir = tmpDir('framewise-access-test-');
let embedder: Embedder;
let model: LoadedModel;
let open: RunningServer;
let locked: RunningServer;
let clipName: string;

beforeAll(async () => {
  embedder = await loadTestEmbedder();
  model = testModel(embedder);
  const media = join(dir.path, 'media');
  mkdirSync(media);
  const clip = await makeClip({ durationSec: 0.5, fps: 10, width: 64, height: 64, dir: dir.path });
  clipName = 'clip.mp4';
  copyFileSync(clip, join(media, clipName));
  const common = { model, port: 0, mediaDir: media, clientDir: join(dir.path, 'no-client') };
  open = await createServer({ ...common, jobsDir: join(dir.path, 'jobs-open') });
  locked = await createServer({ ...common, jobsDir: join(dir.path, 'jobs-locked'), token: TOKEN });
});

afterAll(async () => {
  await open?.close();
  await locked?.close();
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with exactly the headers given (fetch would not let a test set Host). */
function raw(base: string, path: string, o: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Reply> {
  const url = new URL(path, base);
  return new Promise((ok, fail) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: o.method ?? 'GET', headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', fail);
    req.end(o.body);
  });
}

const code = (r: Reply) => (JSON.parse(r.body) as { code: string }).code;

/** Status of a WebSocket upgrade: 101 when accepted, else the HTTP status of the refusal. */
function upgradeStatus(base: string, headers: Record<string, string>): Promise<number> {
  return new Promise((ok, fail) => {
    const ws = openSocket(base, { headers });
    ws.on('upgrade', () => {
      ok(101);
      ws.terminate();
    });
    ws.on('unexpected-response', (_req, res) => {
      ok(res.statusCode!);
      res.resume();
    });
    ws.on('error', (err) => fail(err));
  });
}

async function jobCount(server: RunningServer): Promise<number> {
  const r = await raw(server.url, '/api/jobs', { headers: server.token ? { Authorization: `Bearer ${server.token}` } : {} });
  return (JSON.parse(r.body) as { jobs: unknown[] }).jobs.length;
}

describe('origin and host', () => {
  test('a WebSocket from a foreign origin is refused with 403; own origin and non-browser clients get in', async () => {
    const own = `http://127.0.0.1:${open.port}`;
    expect(await upgradeStatus(open.url, { Origin: `http://127.0.0.1:${open.port + 1}` })).toBe(403);
    expect(await upgradeStatus(open.url, { Origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(open.url, { Origin: 'null' })).toBe(403);
    expect(await upgradeStatus(open.url, { Origin: own })).toBe(101);
    expect(await upgradeStatus(open.url, {})).toBe(101);
  });

  test('a cross-site text/plain POST does not start a job', async () => {
    const before = await jobCount(open);
    const r = await raw(open.url, '/api/jobs', {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', Origin: 'http://localhost:1' },
      body: JSON.stringify({ path: clipName }),
    });
    expect(r.status).toBe(403);
    expect(code(r)).toBe('E_FORBIDDEN');
    expect(await jobCount(open)).toBe(before);
    // The same request from the server's own origin is accepted.
    const same = await raw(open.url, '/api/jobs', {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', Origin: `http://127.0.0.1:${open.port}` },
      body: JSON.stringify({ path: clipName }),
    });
    expect(same.status).toBe(202);
  });

  test('a foreign Host (DNS rebinding) gets 403 on the API, the media and the socket; loopback names are fine', async () => {
    for (const path of ['/api/jobs', `/media/${clipName}`, '/api/info']) {
      const r = await raw(open.url, path, { headers: { Host: `attacker.example:${open.port}` } });
      expect(r.status, path).toBe(403);
      expect(code(r)).toBe('E_FORBIDDEN');
    }
    expect(await upgradeStatus(open.url, { Host: `attacker.example:${open.port}` })).toBe(403);
    for (const host of [`localhost:${open.port}`, `127.0.0.1:${open.port}`, `[::1]:${open.port}`]) {
      expect((await raw(open.url, '/api/info', { headers: { Host: host } })).status, host).toBe(200);
    }
  });
});

describe('token', () => {
  test('without the token: 401 E_UNAUTHORIZED on pages, API, media and the socket', async () => {
    for (const path of ['/', '/api/info', '/api/jobs', `/media/${clipName}`, '/api/info?token=wrong-token-0123456789']) {
      const r = await raw(locked.url, path);
      expect(r.status, path).toBe(401);
      expect(code(r)).toBe('E_UNAUTHORIZED');
    }
    expect(await upgradeStatus(locked.url, {})).toBe(401);
    expect(await upgradeStatus(locked.url, { Cookie: `framewise-token-${locked.port}=nope` })).toBe(401);
    await expect(connectLive(locked.url)).rejects.toThrow();
  });

  test('?token= sets an HttpOnly SameSite=Strict cookie that then opens media ranges and the socket', async () => {
    const first = await raw(locked.url, `/api/info?token=${TOKEN}`);
    expect(first.status).toBe(200);
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(new RegExp(`^framewise-token-${locked.port}=${TOKEN};`));
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(';')[0]!;
    const range = await raw(locked.url, `/media/${clipName}`, { headers: { Cookie: cookie, Range: 'bytes=0-9' } });
    expect(range.status).toBe(206);
    expect(await upgradeStatus(locked.url, { Cookie: cookie })).toBe(101);
    expect((await raw(locked.url, '/api/jobs', { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // The URL the CLI prints carries the token; the Node client sends it as a bearer token.
    expect(locked.openUrl).toBe(`${locked.url}/?token=${TOKEN}`);
    const c = await connectLive(locked.openUrl);
    expect(c.welcome.type).toBe('welcome');
    await c.close();
  });

  test('the token does not let a foreign origin in', async () => {
    expect(await upgradeStatus(locked.url, { Authorization: `Bearer ${TOKEN}`, Origin: 'http://127.0.0.1:1' })).toBe(403);
  });

  test('a non-loopback bind without a token is refused before anything starts', async () => {
    await expect(createServer({ model, port: 0, host: '0.0.0.0', clientDir: dir.path, jobsDir: join(dir.path, 'never') })).rejects.toMatchObject({
      code: 'E_USAGE',
      message: expect.stringMatching(/needs a token.*--no-auth/),
    });
  });
});

test('job errors sent to clients name no absolute server path', async () => {
  const c = await connectLive(open.url);
  try {
    const body = Buffer.from('definitely not a video');
    const r = await raw(open.url, '/api/jobs?name=x.mp4', { method: 'POST', body });
    const { job } = JSON.parse(r.body) as { job: { id: string } };
    c.sendJson({ type: 'subscribe', jobId: job.id });
    const failed = await c.next<JobMessage>((m) => m.type === 'job' && m.job.status === 'failed', 30_000);
    expect(failed.job.error!.code).toBe('E_DECODE_FAILED');
    expect(failed.job.error!.message).toMatch(/upload\.mp4/);
    expect(failed.job.error!.message).not.toContain(dir.path);
    expect(failed.job.error!.message).not.toMatch(/(^|[\s'"(:=])\/\w+\/\w+/);
    const listed = await raw(open.url, `/api/jobs/${job.id}`);
    expect(listed.body).not.toContain(dir.path);
  } finally {
    await c.close();
  }
});

test('a socket that never says hello is closed after the hello deadline and frees its slot', async () => {
  const small = await createServer({ model, port: 0, maxSessions: 1, helloTimeoutMs: 300, clientDir: dir.path, jobsDir: join(dir.path, 'jobs-hello') });
  try {
    const silent = openSocket(small.url);
    silent.on('error', () => undefined);
    const got: string[] = [];
    silent.on('message', (d) => got.push(String(d)));
    await new Promise((ok) => silent.once('open', ok));
    await expect(connectLive(small.url)).rejects.toThrow(/E_BUSY/);
    const closed = await new Promise<number>((ok) => silent.once('close', ok));
    expect(closed).toBe(1002);
    expect(got.join('')).toMatch(/E_PROTOCOL.*no hello/);
    const c = await connectLive(small.url);
    expect(small.sessionCount()).toBe(1);
    await c.close();
  } finally {
    await small.close();
  }
});
