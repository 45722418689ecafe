// `train --negatives DIR`: every video under DIR (recursively, any layout) joins the dataset as a
// clip of class `background`; a missing or empty folder is a clear error.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { ErrorCodes } from '../../core/errors.ts';
import type { Dataset } from '../../training/dataset.ts';
import { withNegatives } from '../../training/negatives.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('videos under the folder, at any depth, become background clips; classes stay sorted', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'framewise-negatives-'));
  dirs.push(dir);
  await mkdir(join(dir, 'sports', 'golf'), { recursive: true });
  await writeFile(join(dir, 'tai chi.mp4'), '');
  await writeFile(join(dir, 'sports', 'golf', 'swing.avi'), '');
  await writeFile(join(dir, 'sports', 'notes.txt'), '');
  const ds: Dataset = {
    root: '/data',
    layout: 'folders',
    classes: ['wave', 'clap'].sort(),
    videos: [{ name: 'wave/P1T1', path: '/data/wave/P1T1.avi', labels: { kind: 'clip', label: 'wave' } }],
  };
  const out = await withNegatives(ds, dir);
  expect(out.classes).toEqual(['background', 'clap', 'wave']);
  expect(out.videos.slice(1).map((v) => [v.name, v.labels])).toEqual([
    ['negatives/sports/golf/swing', { kind: 'clip', label: 'background' }],
    ['negatives/tai chi', { kind: 'clip', label: 'background' }],
  ]);
  expect(ds.videos).toHaveLength(1); // the caller's dataset is not changed
  await expect(withNegatives(ds, join(dir, 'nope'))).rejects.toMatchObject({ code: ErrorCodes.INPUT_NOT_FOUND });
  await expect(withNegatives(ds, join(dir, 'sports', 'golf', '..', '..', 'sports'))).resolves.toBeDefined();
  const empty = await mkdtemp(join(tmpdir(), 'framewise-negatives-empty-'));
  dirs.push(empty);
  await expect(withNegatives(ds, empty)).rejects.toMatchObject({ code: ErrorCodes.DATASET_INVALID });
});
