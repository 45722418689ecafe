// A full Teach round in Debian's Chromium against a teach-only server (no --model): two browsers,
// each with its own fake webcam (a fake camera plays one .y4m per launch): one sees SMPTE bars,
// the other black. Each records clips of its activity with the data-testid controls; one presses
// Train (small settings from the URL). A second training request meanwhile is refused with E_BUSY;
// teach-status reaches "ready"; then each page labels its own webcam with the right activity.
// The clips are a folder-per-class dataset on disk, the bundle downloads as a tar, and a server
// restarted on the same folder serves the taught bundle. FRAMEWISE_KEEP_TEST_DIR=1 keeps the
// folder (clips, bundle) and prints the server's log with times.
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildClient } from '../../scripts/build-client.ts';
import { createServer, type RunningServer } from '../../server/server.ts';
import { REPO_ROOT, MODELS_DIR } from '../helpers/real-models.ts';
import { CHROMIUM, launchWithCamera } from '../helpers/chromium.ts';
import { tmpDir } from '../helpers/video.ts';
import { barsClip, TEST_EMBEDDER } from '../server/fixtures.ts';

const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const CLIPS = 2;
/** Small settings: a tiny head, few epochs, still scenes (no input normalisation), no held-out clips. */
const TRAIN = '?epochs=6&hidden=16&augCopies=0&valSplit=0&folds=0&inputNorm=0&patience=0';
const dir = tmpDir('framewise-teach-');
if (process.env.FRAMEWISE_KEEP_TEST_DIR) process.stderr.write(`teach test folder: ${dir.path}\n`);
const teachDir = dir.file('teach');
let server: RunningServer;
const browsers: Browser[] = [];

function serve(): Promise<RunningServer> {
  return createServer({
    embedder: TEST_EMBEDDER,
    teachDir,
    modelsDir: MODELS_DIR,
    engine: 'tfjs',
    workers: 1,
    port: 0,
    clientDir: dir.file('client'),
    jobsDir: dir.file('jobs'),
    cacheDir: dir.file('cache'),
    log: process.env.FRAMEWISE_KEEP_TEST_DIR ? (l) => process.stderr.write(`[${(performance.now() / 1000).toFixed(1)}] ${l}\n`) : undefined,
  });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const [, bars, off] = await Promise.all([
    buildClient(dir.file('client')),
    barsClip(dir.file('bars.y4m'), [['bars', 2]], { fps: 15, codec: ['-f', 'yuv4mpegpipe'] }),
    barsClip(dir.file('off.y4m'), [['off', 2]], { fps: 15, codec: ['-f', 'yuv4mpegpipe'] }),
  ]);
  server = await serve();
  if (existsSync(CHROMIUM)) browsers.push(await launchWithCamera(bars), await launchWithCamera(off));
}, 120_000);

afterAll(async () => {
  for (const b of browsers) await b.close();
  await server?.close();
  if (!process.env.FRAMEWISE_KEEP_TEST_DIR) dir.cleanup();
});

async function openTeach(browser: Browser): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1000 } });
  page.on('pageerror', (err) => {
    throw err;
  });
  await page.goto(`${server.url}/${TRAIN}#teach`);
  await page.waitForSelector('#conn-status.ok', { timeout: 10_000 });
  return page;
}

async function recordClips(page: Page, name: string): Promise<void> {
  const record = page.locator(`[data-testid=teach-record][data-class="${name}"]`);
  for (let n = 1; n <= CLIPS; n++) {
    await record.click();
    await page
      .locator(`.teach-class[data-class="${name}"] .clip`)
      .nth(n - 1)
      .waitFor({ timeout: 15_000 });
    await expect.poll(() => record.isEnabled(), { timeout: 10_000 }).toBe(true);
  }
}

describe('Teach', () => {
  test.skipIf(!existsSync(CHROMIUM))(
    'record two activities from two webcams, train, and label each webcam with its activity',
    async () => {
      const [barsPage, offPage] = [await openTeach(browsers[0]!), await openTeach(browsers[1]!)];
      expect(await barsPage.locator('[data-testid=teach-status]').textContent()).toBe('no model yet');
      for (const name of ['bars', 'off']) {
        await barsPage.fill('[data-testid=teach-class-name]', name);
        await barsPage.click('[data-testid=teach-add-class]');
        await barsPage.locator(`.teach-class[data-class="${name}"]`).waitFor();
      }
      await recordClips(barsPage, 'bars');
      await offPage.reload();
      await offPage.locator('.teach-class[data-class="off"]').waitFor();
      await recordClips(offPage, 'off');
      for (const name of ['bars', 'off']) expect(readdirSync(join(teachDir, 'data', name)).filter((f) => f.endsWith('.webm'))).toHaveLength(CLIPS);

      await offPage.click('[data-testid=teach-train]');
      const busy = await fetch(`${server.url}/api/teach/train`, { method: 'POST', body: '{}' });
      expect(busy.status).toBe(503);
      expect(((await busy.json()) as { code: string }).code).toBe('E_BUSY');
      await offPage.screenshot({ path: join(ARTIFACTS, 'teach-training.png') });
      await offPage.waitForFunction(() => /ready$/.test(document.querySelector('[data-testid=teach-status]')?.textContent ?? ''), undefined, {
        timeout: 180_000,
      });
      await barsPage.waitForFunction(() => /ready$/.test(document.querySelector('[data-testid=teach-status]')?.textContent ?? ''), undefined, {
        timeout: 10_000,
      });
      expect(server.model.classes).toEqual(['bars', 'off']);

      // Each page's socket reconnected to a session on the new model and labels its own webcam.
      await offPage.waitForFunction(() => document.getElementById('teach-label')?.dataset.label === 'off', undefined, { timeout: 20_000 });
      await barsPage.waitForFunction(() => document.getElementById('teach-label')?.dataset.label === 'bars', undefined, { timeout: 20_000 });
      await offPage.waitForTimeout(1500);
      expect(await offPage.locator('#teach-label').getAttribute('data-label')).toBe('off');
      expect(await barsPage.locator('#teach-label').getAttribute('data-label')).toBe('bars');
      await barsPage.screenshot({ path: join(ARTIFACTS, 'teach-ready.png') });
      expect(await barsPage.locator('#model-info').textContent()).toMatch(/^2 classes/);

      const overview = (await (await fetch(`${server.url}/api/teach`)).json()) as { bundles: { id: string; current: boolean; downloadUrl: string }[] };
      expect(overview.bundles).toHaveLength(1);
      expect(overview.bundles[0]!.current).toBe(true);
      const tar = Buffer.from(await (await fetch(`${server.url}${overview.bundles[0]!.downloadUrl}`)).arrayBuffer());
      expect(tar.subarray(257, 262).toString()).toBe('ustar');
      expect(tar.toString('latin1')).toContain(`${overview.bundles[0]!.id}/framewise.json`);
      await barsPage.close();
      await offPage.close();

      // What was taught survives a restart of a teach-only server.
      await server.close();
      server = await serve();
      expect(server.model.classes).toEqual(['bars', 'off']);
    },
    300_000,
  );
});
