// The live view's `where: this device` in Debian's Chromium (headless, so the WASM backend): the
// page loads the embedder and the bundle over HTTP and labels the fake webcam itself. The same
// rgb24 frames the page computed are then fed to the server over the socket: the page's
// probabilities must equal the server's within 1e-3 (fp32 on both sides), and the page must never
// have sent a binary frame message. Also: the on-device labels follow the clip (bars, then off).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import { buildClient } from '../../scripts/build-client.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { connectLive, type LiveClient } from '../../server/ws-client.ts';
import type { LabelMessage } from '../../server/protocol.ts';
import { MODELS_DIR, REPO_ROOT } from '../helpers/real-models.ts';
import { CHROMIUM, launchWithCamera } from '../helpers/chromium.ts';
import { tmpDir } from '../helpers/video.ts';
import { barsClip, loadTestEmbedder, trainBarsHead } from '../server/fixtures.ts';

const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const dir = tmpDir('framewise-device-');
let embedder: Embedder;
let model: LoadedModel;
let server: RunningServer;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const camera = dir.file('camera.y4m');
  const [, , e] = await Promise.all([
    buildClient(dir.file('client')),
    barsClip(
      camera,
      [
        ['bars', 3],
        ['off', 3],
      ],
      { fps: 15, codec: ['-f', 'yuv4mpegpipe'] },
    ),
    loadTestEmbedder(),
  ]);
  embedder = e;
  const head = await trainBarsHead(embedder, dir.path);
  // No bundle folder: the server writes one from the loaded head when the page asks for its files.
  model = { embedder, head, meta: { classes: ['bars', 'off'], embedderId: embedder.id, fps: 10, crop: 'center' } };
  server = await createServer({ model, port: 0, clientDir: dir.file('client'), jobsDir: dir.file('jobs'), modelsDir: MODELS_DIR });
  browser = await launchWithCamera(camera);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

describe('on the device', () => {
  test.skipIf(!existsSync(CHROMIUM))(
    'the page labels the webcam itself, sends no frame, and agrees with the server on the same pixels',
    async () => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      let binaryFrames = 0;
      let textMessages = 0;
      page.on('websocket', (ws) =>
        ws.on('framesent', ({ payload }) => {
          if (typeof payload === 'string') textMessages += 1;
          else binaryFrames += 1;
        }),
      );
      await page.goto(`${server.url}/?where=device&backend=wasm&trace#live`);
      await page.waitForSelector('#conn-status.ok', { timeout: 10_000 });
      expect(await page.locator('#live-where').inputValue()).toBe('device');
      await page.click('#live-start');
      await page.waitForFunction(() => document.getElementById('live-label')?.dataset.label === 'bars', undefined, { timeout: 60_000 });
      await page.waitForFunction(() => document.getElementById('live-label')?.dataset.label === 'off', undefined, { timeout: 20_000 });
      await page.waitForFunction(() => (window as unknown as { framewiseTrace: unknown[] }).framewiseTrace.length >= 40, undefined, { timeout: 30_000 });
      expect(await page.locator('#live-backend').textContent()).toBe('wasm (this device)');
      expect(await page.locator('#live-latency').textContent()).toMatch(/^\d+ ms/);
      expect(await page.locator('#live-device-ms').textContent()).toMatch(/^\d+(\.\d)? ms$/);
      await page.screenshot({ path: join(ARTIFACTS, 'live-device.png') });
      const trace = await page.evaluate(() =>
        (window as unknown as { framewiseTrace: { index: number; rgb: Uint8Array; probs: Float32Array }[] }).framewiseTrace.map((t) => ({
          index: t.index,
          rgb: btoa(Array.from(t.rgb, (b) => String.fromCharCode(b)).join('')),
          probs: Array.from(t.probs),
        })),
      );
      await page.click('#live-stop');
      expect(errors).toEqual([]);
      expect(binaryFrames).toBe(0);
      expect(textMessages).toBeGreaterThan(0); // the socket was open: only its hello went out

      // The page's first frames, in order from its zero state, through the server's own chain.
      expect(trace.map((t) => t.index)).toEqual(trace.map((_, i) => i));
      const labels = new Set<string>();
      let client: LiveClient | undefined;
      let worst = 0;
      try {
        client = await connectLive(server.url, 'device-test');
        for (const t of trace) {
          // One frame per tick of the bundle's 10 fps, as the page captured them.
          client.sendFrame({ index: t.index, timestampMs: t.index * 100 }, new Uint8Array(Buffer.from(t.rgb, 'base64')));
          const m = await client.next<LabelMessage>((x) => x.type === 'label' && x.index === t.index, 20_000);
          labels.add(m.label);
          for (let c = 0; c < m.probs.length; c++) worst = Math.max(worst, Math.abs(m.probs[c]! - t.probs[c]!));
        }
      } finally {
        await client?.close();
      }
      expect(worst).toBeLessThan(1e-3);
      expect(labels).toEqual(new Set(['bars', 'off']));
      await page.close();
    },
    180_000,
  );
});
