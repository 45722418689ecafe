// A real browser page from another origin (another loopback port) tries what a malicious site
// would: open the live WebSocket and POST a job with a text/plain body (no CORS preflight). Both
// must fail, while the very same page served by framewise itself succeeds. With a token, the
// cookie that the printed URL sets lets the server's own page in, and still not the other origin
// (cookies ignore ports, so the browser does send it there).
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer as createHttpServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';
import { loadTestEmbedder, testModel } from '../server/fixtures.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOKEN = 'cross-origin-test-token-0123456789';
const dir = tmpDir('framewise-cross-origin-');

/** The attacker's page: tries the socket and a simple POST against `target`, reports what happened. */
const PROBE_PAGE = `<!doctype html><meta charset="utf-8"><title>probe</title><script>
window.probe = async (target, path) => {
  const ws = await new Promise((ok) => {
    const s = new WebSocket(target.replace(/^http/, 'ws') + '/ws');
    s.onopen = () => s.send(JSON.stringify({ type: 'hello', version: 1 }));
    s.onmessage = (e) => { ok(JSON.parse(e.data).type); s.close(); };
    s.onerror = () => ok('error');
  });
  let post = 'sent';
  try {
    await fetch(target + '/api/jobs', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ path }) });
  } catch { post = 'failed'; }
  return { ws, post };
};
</script>`;

let embedder: Embedder;
let model: LoadedModel;
let open: RunningServer;
let locked: RunningServer;
let foreign: Server;
let foreignUrl: string;
let browser: Browser;

beforeAll(async () => {
  const client = join(dir.path, 'client');
  const media = join(dir.path, 'media');
  mkdirSync(client);
  mkdirSync(media);
  writeFileSync(join(client, 'probe.html'), PROBE_PAGE);
  copyFileSync(await makeClip({ durationSec: 0.3, fps: 10, width: 64, height: 64, dir: dir.path }), join(media, 'clip.mp4'));
  embedder = await loadTestEmbedder();
  model = testModel(embedder);
  open = await createServer({ model, port: 0, mediaDir: media, clientDir: client, jobsDir: join(dir.path, 'jobs-open') });
  locked = await createServer({ model, port: 0, mediaDir: media, clientDir: client, jobsDir: join(dir.path, 'jobs-locked'), token: TOKEN });
  const page = readFileSync(join(client, 'probe.html'));
  foreign = createHttpServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(page));
  await new Promise<void>((ok) => foreign.listen(0, '127.0.0.1', ok));
  foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}`;
  if (existsSync(CHROMIUM))
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((ok) => (foreign ? foreign.close(ok) : ok(undefined)));
  await open?.close();
  await locked?.close();
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

function jobCount(server: RunningServer): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request(`${server.url}/api/jobs`, { headers: server.token ? { Authorization: `Bearer ${server.token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => ok((JSON.parse(body) as { jobs: unknown[] }).jobs.length));
    });
    req.on('error', fail);
    req.end();
  });
}

async function probeFrom(context: BrowserContext, pageUrl: string, target: RunningServer): Promise<{ ws: string; post: string; newJobs: number }> {
  const before = await jobCount(target);
  const page = await context.newPage();
  try {
    await page.goto(pageUrl);
    const r = await page.evaluate(
      ([t, p]) => (window as unknown as { probe(t: string, p: string): Promise<{ ws: string; post: string }> }).probe(t!, p!),
      [target.url, 'clip.mp4'],
    );
    // The POST is fire-and-forget from the page's side (no-cors hides the answer): give it time to land.
    await new Promise((ok) => setTimeout(ok, 300));
    return { ...r, newJobs: (await jobCount(target)) - before };
  } finally {
    await page.close();
  }
}

describe.skipIf(!existsSync(CHROMIUM))('a page from another origin', () => {
  test('cannot open the socket or start a job; the same page from the server itself can', async () => {
    const context = await browser.newContext();
    try {
      expect(await probeFrom(context, `${foreignUrl}/probe.html`, open)).toMatchObject({ ws: 'error', newJobs: 0 });
      expect(await probeFrom(context, `${open.url}/probe.html`, open)).toEqual({ ws: 'welcome', post: 'sent', newJobs: 1 });
    } finally {
      await context.close();
    }
  });

  test('with a token: the printed URL sets the cookie that lets the own page in, not the other origin', async () => {
    const context = await browser.newContext();
    try {
      expect(await probeFrom(context, `${locked.url}/probe.html?token=${TOKEN}`, locked)).toEqual({ ws: 'welcome', post: 'sent', newJobs: 1 });
      expect((await context.cookies(locked.url)).map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([[`framewise-token-${locked.port}`, true, 'Strict']]);
      expect(await probeFrom(context, `${foreignUrl}/probe.html`, locked)).toMatchObject({ ws: 'error', newJobs: 0 });
    } finally {
      await context.close();
    }
  });
});
