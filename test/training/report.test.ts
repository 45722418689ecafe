// The training report as a reader sees it: the page opens from a file with the network cut off,
// draws its four charts with uPlot (inlined), shows accuracy in %, marks the kept epoch, takes
// per-fold histories as extra series, sorts the per-video table, and logs no error.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, expect, test } from 'vitest';
import { evaluateSequences } from '../../models/metrics.ts';
import type { EpochRecord } from '../../training/fit.ts';
import { middleAccuracyOf, middleHalf, perVideoRows } from '../../training/per-video.ts';
import { renderReportHtml, writeReport } from '../../training/report.ts';
import { tmpDir } from '../helpers/video.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const dir = tmpDir('framewise-report-');
afterAll(() => dir.cleanup());

const history: EpochRecord[] = Array.from({ length: 12 }, (_, i) => ({
  epoch: i + 1,
  trainLoss: 1.1 / (i + 1),
  trainAccuracy: Math.min(1, 0.4 + i * 0.06),
  valLoss: 1.2 / (i + 1) + (i > 6 ? (i - 6) * 0.05 : 0),
  valAccuracy: Math.min(0.9, 0.35 + i * 0.05),
  lr: 1e-3 * (1 - i / 12),
  gradNorm: 0.5 + 0.1 * i,
  framesPerSecond: 900,
  seconds: 1,
}));
const classes = ['wave', 'swing', 'hold'];
const videos = [
  { name: 'wave/P2T1', truth: Int32Array.of(0, 0, 0, 0), pred: Int32Array.of(0, 0, 1, 0) },
  { name: 'swing/P2T1', truth: Int32Array.of(1, 1, 1), pred: Int32Array.of(2, 2, 1) },
  { name: 'hold/P2T1', truth: Int32Array.of(2, 2), pred: Int32Array.of(2, 2) },
];
const evaluation = evaluateSequences(videos, classes);
const report = {
  title: 'framewise training report: test',
  scope: 'Scores are on the held-out validation group 2.',
  history,
  bestEpoch: 7,
  earlyStop: { epoch: 12, patience: 5 },
  folds: [{ name: 'fold 1', history: history.slice(0, 10).map((h) => ({ ...h, valLoss: h.valLoss * 1.1 })) }],
  evaluation,
  evaluationName: 'validation',
  perVideo: perVideoRows(videos, classes, { singleLabel: true }),
  config: { embedder: 'mobilenet_v1_0.25_224', hidden: 64, valGroups: ['2'] },
  dataset: {
    root: '/data',
    layout: 'folders',
    classes,
    train: { videos: 9, frames: 900, framesPerClass: { wave: 300, swing: 300, hold: 300 }, names: ['a'] },
    val: { videos: 3, frames: 9, framesPerClass: { wave: 4, swing: 3, hold: 2 }, names: ['b'] },
  },
};

test('per-video rows: accuracy, majority label and the clip truth', () => {
  const rows = perVideoRows(videos, classes, { singleLabel: true });
  expect(rows.map((r) => [r.name, r.frames, r.accuracy, r.truth, r.majority])).toEqual([
    ['wave/P2T1', 4, 0.75, 'wave', 'wave'],
    ['swing/P2T1', 3, 1 / 3, 'swing', 'hold'],
    ['hold/P2T1', 2, 1, 'hold', 'hold'],
  ]);
});

test("the middle half of a clip: its first and last quarter's frames do not count", () => {
  expect(middleHalf(8)).toEqual([2, 6]);
  expect(middleHalf(3)).toEqual([0, 3]);
  // Wrong only at the start (a causal labeler's late decision) and at the very end: the middle is all right.
  const late = { name: 'wave/P1', truth: new Int32Array(8).fill(0), pred: Int32Array.of(1, 1, 0, 0, 0, 0, 0, 2) };
  // Wrong in the middle.
  const middle = { name: 'hold/P1', truth: new Int32Array(8).fill(2), pred: Int32Array.of(2, 2, 2, 0, 0, 2, 2, 2) };
  const rows = perVideoRows([late, middle], classes, { singleLabel: true });
  expect(rows.map((r) => [r.accuracy, r.middleAccuracy])).toEqual([
    [5 / 8, 1],
    [6 / 8, 0.5],
  ]);
  expect(middleAccuracyOf(rows)).toEqual({ mean: 0.75, lowest: 0.5 });
  expect(renderReportHtml({ ...report, perVideo: rows })).toMatch(/<th[^>]*>middle half<\/th>.*<td data-v="0.5">50.0%<\/td>/s);
  // Videos labeled frame by frame (no single truth) have no middle-half figure.
  expect(perVideoRows([late], classes)[0]!.middleAccuracy).toBeUndefined();
});

test('the page is one file: uPlot inlined, no external reference, raw JSON folded away', async () => {
  const html = renderReportHtml(report);
  expect(html).toContain('uPlot');
  expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=/);
  expect(html).toMatch(/<details><summary>configuration as JSON<\/summary><pre>/);
  const { json } = await writeReport(dir.file('report'), report);
  expect(JSON.parse(readFileSync(json, 'utf8')).folds[0].name).toBe('fold 1');
});

test.skipIf(!existsSync(CHROMIUM))(
  'offline in Chromium: four charts, % axis, kept epoch, fold series, sortable table',
  async () => {
    const { html } = await writeReport(join(dir.path, 'report'), report);
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      // Any request beyond the file itself would fail offline: refuse them all and count them.
      const requests: string[] = [];
      await page.route(
        (url) => !url.href.startsWith('file:'),
        (route) => (requests.push(route.request().url()), route.abort()),
      );
      await page.goto(`file://${html}`);
      await page.waitForSelector('#chart-grad canvas');
      expect(await page.locator('.uplot').count()).toBe(4);
      // Accuracy is drawn in % (data scaled, ticks labeled), as the tables show it.
      const acc = await page.evaluate(() => {
        const u = (
          window as unknown as { framewiseCharts: Record<string, { data: (number | null)[][]; axes: { values: (u: unknown, v: number[]) => string[] }[] }> }
        ).framewiseCharts['chart-acc']!;
        return { max: Math.max(...(u.data[2] as number[])), ticks: u.axes[1]!.values(u, [0, 50, 100]) };
      });
      expect(acc.max).toBeCloseTo(90, 5);
      expect(acc.ticks).toEqual(['0%', '50%', '100%']);
      const lossLegend = await page.locator('#chart-loss .u-legend').innerText();
      expect(lossLegend).toContain('fold 1 validation');
      // The marker is drawn on the canvas: a green pixel column at the kept epoch.
      const green = await page.evaluate(() => {
        const c = document.querySelector('#chart-loss canvas') as HTMLCanvasElement;
        const ctx = c.getContext('2d')!;
        const data = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] === 0x1b && data[i + 1] === 0x7f && data[i + 2] === 0x3b) n++;
        return n;
      });
      expect(green).toBeGreaterThan(50);
      await page.locator('table.sortable th', { hasText: 'frame accuracy' }).click();
      expect(await page.locator('table.sortable tbody tr td:first-child').allInnerTexts()).toEqual(['swing/P2T1', 'wave/P2T1', 'hold/P2T1']);
      await expect.poll(() => page.locator('table.sortable tr.wrong').count()).toBe(1);
      expect(requests).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  },
  60_000,
);
