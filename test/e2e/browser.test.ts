// The browser client in Debian's Chromium (playwright-core, headless) against a real server. The
// fake webcam plays a clip of SMPTE bars then black, looped; a tiny head trained in the set-up
// tells 'bars' from 'off', so the live view must show both labels. The file view labels a
// bars/black/bars video from the media folder and must show labels that change at the right
// playback times, and seek from the segment strip. An MPEG-4 Part 2 .avi (which no browser plays)
// must be converted by the server and then play with its labels. No page may log a console error
// (a missing favicon would be one). Screenshots go to test/artifacts/.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import { buildClient } from '../../scripts/build-client.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { REPO_ROOT } from '../helpers/real-models.ts';
import { CHROMIUM, launchWithCamera } from '../helpers/chromium.ts';
import { tmpDir } from '../helpers/video.ts';
import { barsClip, loadTestEmbedder, trainBarsHead } from '../server/fixtures.ts';

const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const dir = tmpDir('framewise-e2e-');
let embedder: Embedder;
let model: LoadedModel;
let server: RunningServer;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const media = join(dir.path, 'media');
  mkdirSync(media);
  const camera = dir.file('camera.y4m');
  const [, , , e] = await Promise.all([
    buildClient(dir.file('client')),
    barsClip(
      camera,
      [
        ['bars', 3],
        ['off', 3],
      ],
      { fps: 15, codec: ['-f', 'yuv4mpegpipe'] },
    ),
    barsClip(
      join(media, 'bars-off-bars.webm'),
      [
        ['bars', 2],
        ['off', 2],
        ['bars', 2],
      ],
      { fps: 25 },
    ),
    loadTestEmbedder(),
    barsClip(
      join(media, 'bars-off.avi'),
      [
        ['bars', 2],
        ['off', 2],
      ],
      { fps: 25, codec: ['-c:v', 'mpeg4', '-q:v', '4'] },
    ),
  ]);
  embedder = e;
  const head = await trainBarsHead(embedder, dir.path);
  model = { embedder, head, meta: { classes: ['bars', 'off'], embedderId: embedder.id, fps: 10, crop: 'center' } };
  server = await createServer({ model, port: 0, mediaDir: media, clientDir: dir.file('client'), jobsDir: dir.file('jobs'), cacheDir: dir.file('cache') });
  browser = await launchWithCamera(camera, ['--autoplay-policy=no-user-gesture-required']);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

/** Page errors and console errors of every page opened, checked after each test. */
const consoleErrors: string[] = [];

async function openPage(hash: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.on('pageerror', (err) => consoleErrors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  await page.goto(`${server.url}/${hash}`);
  await page.waitForSelector('#conn-status.ok', { timeout: 10_000 });
  expect(consoleErrors).toEqual([]);
  return page;
}

afterEach(() => {
  const seen = consoleErrors.splice(0);
  expect(seen).toEqual([]);
});

describe('browser client', () => {
  test.skipIf(!existsSync(CHROMIUM))('live view labels the fake webcam: bars, then off', async () => {
    const page = await openPage('#live');
    await page.click('#live-start');
    await page.waitForFunction(() => document.getElementById('live-label')?.dataset.label === 'bars', undefined, { timeout: 20_000 });
    await page.waitForFunction(() => document.getElementById('live-label')?.dataset.label === 'off', undefined, { timeout: 20_000 });
    await page.waitForFunction(() => document.getElementById('live-label')?.dataset.label === 'bars', undefined, { timeout: 20_000 });
    expect(await page.locator('#live-latency').textContent()).toMatch(/^\d+ ms/);
    expect(Number(await page.locator('#live-index').textContent())).toBeGreaterThan(10);
    expect(await page.locator('#live-message').isHidden()).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'live-view.png') });
    await page.click('#live-reset');
    await page.click('#live-stop');
    await page.close();
  });

  test.skipIf(!existsSync(CHROMIUM))('file view: labels a video, plays it with labels in sync, seeks from the strip', async () => {
    const page = await openPage('#file');
    await page.waitForSelector('#file-media option[value="bars-off-bars.webm"]', { state: 'attached' });
    await page.selectOption('#file-media', 'bars-off-bars.webm');
    await page.click('#file-label-media');
    await page.waitForSelector('#download-jsonl', { timeout: 30_000 });
    const links = await page.locator('#file-downloads a').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).id));
    expect(links.sort()).toEqual(['download-csv', 'download-jsonl', 'download-segments', 'download-vtt']);
    await page.waitForFunction(() => (document.getElementById('file-video') as HTMLVideoElement).readyState >= 2, undefined, { timeout: 10_000 });

    // Play from the start and sample (media time, shown label) as frames are presented.
    const samples = await page.evaluate(async () => {
      const v = document.getElementById('file-video') as HTMLVideoElement;
      const out: [number, string][] = [];
      v.currentTime = 0;
      await v.play();
      await new Promise<void>((done) => {
        const poll = setInterval(() => {
          const t = Number(document.getElementById('file-time')!.dataset.ms);
          out.push([t, document.getElementById('file-label')!.dataset.label ?? '']);
          if (v.ended || v.currentTime >= 5.9) {
            clearInterval(poll);
            done();
          }
        }, 40);
      });
      v.pause();
      return out;
    });
    const at = (from: number, to: number) => samples.filter(([t]) => t >= from && t < to).map(([, l]) => l);
    expect(at(300, 1900).length).toBeGreaterThan(5);
    // The head runs at 10 fps and needs a frame or two to switch: allow 300 ms after each cut.
    expect(new Set(at(300, 2000))).toEqual(new Set(['bars']));
    expect(new Set(at(2300, 4000))).toEqual(new Set(['off']));
    expect(new Set(at(4300, 5900))).toEqual(new Set(['bars']));
    const firstOff = samples.find(([t, l]) => t >= 1000 && l === 'off')![0];
    expect(firstOff).toBeGreaterThanOrEqual(1950);
    expect(firstOff).toBeLessThan(2300);

    // Clicking the middle of the strip seeks to ~3 s, inside the black part.
    const box = (await page.locator('#file-timeline').boundingBox())!;
    await page.mouse.click(box.x + box.width * 0.5, box.y + box.height / 2);
    await page.waitForFunction(() => Math.abs((document.getElementById('file-video') as HTMLVideoElement).currentTime - 3) < 0.2, undefined, { timeout: 5000 });
    await page.waitForFunction(() => document.getElementById('file-label')?.dataset.label === 'off', undefined, { timeout: 5000 });
    await page.evaluate(() => {
      (document.getElementById('file-video') as HTMLVideoElement).currentTime = 1.2;
    });
    await page.waitForFunction(() => document.getElementById('file-label')?.dataset.label === 'bars', undefined, { timeout: 5000 });
    await page.screenshot({ path: join(ARTIFACTS, 'file-view.png') });
    await page.close();
  });

  test.skipIf(!existsSync(CHROMIUM))('file view: an MPEG-4 Part 2 .avi is converted for playback and plays with its labels', async () => {
    const page = await openPage('#file');
    await page.waitForSelector('#file-media option[value="bars-off.avi"]', { state: 'attached' });
    await page.selectOption('#file-media', 'bars-off.avi');
    await page.click('#file-label-media');
    await page.waitForSelector('#download-jsonl', { timeout: 30_000 });
    // The original cannot play: the page says why while ffmpeg converts, then plays the copy.
    await page.waitForFunction(() => (document.getElementById('file-video') as HTMLVideoElement).readyState >= 2, undefined, { timeout: 30_000 });
    expect(await page.locator('#file-video').evaluate((v) => (v as HTMLVideoElement).currentSrc)).toMatch(/\/api\/jobs\/\w+\/playback$/);
    expect(await page.locator('#file-progress-text').textContent()).toContain('H.264 copy');
    const seen = await page.evaluate(async () => {
      const v = document.getElementById('file-video') as HTMLVideoElement;
      const labels = new Set<string>();
      const start = v.currentTime;
      await v.play();
      await new Promise<void>((done) => {
        const poll = setInterval(() => {
          labels.add(document.getElementById('file-label')!.dataset.label ?? '');
          if (v.ended || v.currentTime >= 3.5) {
            clearInterval(poll);
            done();
          }
        }, 40);
      });
      v.pause();
      return { start, end: v.currentTime, labels: [...labels] };
    });
    expect(seen.end - seen.start).toBeGreaterThan(3);
    expect(seen.labels).toEqual(expect.arrayContaining(['bars', 'off']));
    // The label shown is in its class colour (the legend's).
    const color = await page.locator('#file-label').evaluate((el) => getComputedStyle(el).color);
    expect(color).not.toBe('');
    await page.screenshot({ path: join(ARTIFACTS, 'file-view-avi.png') });
    await page.close();
  });
});
