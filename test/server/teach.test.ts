// The Teach routes without a browser, on a teach-only server: names and uploads are bounded and
// checked, a training needs clips of two activities, and a training that fails (clips that are
// not video) says why over the socket, leaves no bundle behind and keeps the server without a
// model. The dataset downloads as a tar that `tar` lists.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createServer, type RunningServer } from '../../server/server.ts';
import type { TeachMessage } from '../../server/protocol.ts';
import { connectLive } from '../../server/ws-client.ts';
import { MODELS_DIR } from '../helpers/real-models.ts';
import { tmpDir } from '../helpers/video.ts';
import { TEST_EMBEDDER } from './fixtures.ts';

const dir = tmpDir('framewise-teach-api-');
const teachDir = dir.file('teach');
let server: RunningServer;

beforeAll(async () => {
  server = await createServer({
    embedder: TEST_EMBEDDER,
    teachDir,
    modelsDir: MODELS_DIR,
    engine: 'tfjs',
    workers: 1,
    port: 0,
    clientDir: dir.file('client'),
    jobsDir: dir.file('jobs'),
    cacheDir: dir.file('cache'),
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  dir.cleanup();
});

const api = async (method: string, path: string, body?: BodyInit, type = 'application/json') => {
  const res = await fetch(`${server.url}${path}`, { method, ...(body !== undefined ? { body, headers: { 'Content-Type': type } } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('Teach routes', () => {
  test('names, uploads and training requests are checked', async () => {
    expect((await api('POST', '/api/teach/classes', JSON.stringify({ name: '../up' }))).body.code).toBe('E_USAGE');
    expect((await api('POST', '/api/teach/classes', JSON.stringify({ name: 'wave' }))).status).toBe(201);
    expect((await api('POST', '/api/teach/classes', JSON.stringify({ name: 'wave' }))).body.message).toMatch(/already/);
    expect((await api('POST', '/api/teach/clips?class=wave', 'x', 'text/plain')).body.message).toMatch(/video\/webm/);
    expect((await api('POST', '/api/teach/clips?class=nobody', 'x', 'video/webm')).status).toBe(404);
    const big = await api('POST', '/api/teach/clips?class=wave', new Uint8Array(17 * 1024 * 1024), 'video/webm');
    expect(big.status).toBe(400);
    expect(big.body.message).toMatch(/at most 16 MiB/);
    // Without a Content-Length the cap applies while streaming, and nothing partial is kept.
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 17; i++) c.enqueue(new Uint8Array(1024 * 1024));
        c.close();
      },
    });
    const streamed = await fetch(`${server.url}/api/teach/clips?class=wave`, {
      method: 'POST',
      body: chunked,
      duplex: 'half',
      headers: { 'Content-Type': 'video/webm' },
    } as RequestInit);
    expect(streamed.status).toBe(400);
    expect(readdirSync(join(teachDir, 'data', 'wave'))).toEqual([]);
    expect((await api('POST', '/api/teach/train', '{}')).body.message).toMatch(/at least two activities/);
    expect((await api('POST', '/api/teach/train', JSON.stringify({ epochs: 'many' }))).body.code).toBe('E_USAGE');
  });

  test('a failed training says why, keeps no bundle, and leaves the server as it was', async () => {
    await api('POST', '/api/teach/classes', JSON.stringify({ name: 'still' }));
    for (const name of ['wave', 'still']) {
      const r = await api('POST', `/api/teach/clips?class=${name}`, new TextEncoder().encode('not a video at all'), 'video/webm');
      expect(r.status).toBe(201);
    }
    const client = await connectLive(server.url, 'teach-test');
    try {
      expect(client.welcome.model.classes).toEqual([]);
      const started = await api('POST', '/api/teach/train', JSON.stringify({ epochs: 2 }));
      expect(started.status).toBe(202);
      const failed = await client.next<TeachMessage>((m) => m.type === 'teach' && m.status === 'failed', 120_000);
      expect(failed.error?.code).toBe('E_TRAINING_FAILED');
      expect(failed.error?.message).toMatch(/clip-/); // names the clip that could not be read
      // Frames on a teach-only server before any model: a clear error, the session goes on.
      client.sendFrame({ index: 0, timestampMs: 1 }, new Uint8Array(224 * 224 * 3));
      const err = await client.next((m) => m.type === 'error');
      expect(err.type === 'error' && err.code).toBe('E_NO_MODEL');
    } finally {
      await client.close();
    }
    expect(server.model.classes).toEqual([]);
    expect(readdirSync(join(teachDir, 'bundles'))).toEqual([]);
    const tarFile = dir.file('dataset.tar');
    writeFileSync(tarFile, Buffer.from(await (await fetch(`${server.url}/api/teach/dataset.tar`)).arrayBuffer()));
    const { stdout } = await promisify(execFile)('tar', ['tf', tarFile]);
    const names = stdout.trim().split('\n');
    expect(names).toHaveLength(2);
    expect(names.every((n) => /^teach-dataset\/(still|wave)\/clip-[a-z0-9]+\.webm$/.test(n))).toBe(true);
    expect(existsSync(join(teachDir, 'teach.json'))).toBe(true);
  }, 150_000);
});
