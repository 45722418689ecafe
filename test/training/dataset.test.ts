import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { labelsAtTimes, loadDataset, splitDataset } from '../../training/dataset.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fw-dataset-'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

// Empty files are enough: the loader reads layout and labels, never the pixels.
async function touch(path: string, content = '') {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

describe('loadDataset', () => {
  test('folder per class: one label per clip, classes sorted, non-videos ignored', async () => {
    const dir = join(root, 'folders');
    await touch(join(dir, 'wave', 'P1T1.avi'));
    await touch(join(dir, 'clap', 'P2T1.mp4'));
    await touch(join(dir, 'clap', 'notes.txt'));
    const ds = await loadDataset(dir);
    expect(ds.layout).toBe('folders');
    expect(ds.classes).toEqual(['clap', 'wave']);
    expect(ds.videos.map((v) => [v.name, v.labels])).toEqual([
      ['clap/P2T1', { kind: 'clip', label: 'clap' }],
      ['wave/P1T1', { kind: 'clip', label: 'wave' }],
    ]);
  });

  test('per-frame labels: one line per frame; a missing label file is a dataset error', async () => {
    const dir = join(root, 'frames');
    await touch(join(dir, 'videos', 'a.mp4'));
    await touch(join(dir, 'labels', 'a.txt'), 'idle\nidle\nrun\n');
    const ds = await loadDataset(dir);
    expect(ds.layout).toBe('frames');
    expect(ds.classes).toEqual(['idle', 'run']);
    expect(ds.videos[0]!.labels).toEqual({ kind: 'frames', labels: ['idle', 'idle', 'run'] });
    await touch(join(dir, 'videos', 'b.mp4'));
    await expect(loadDataset(dir)).rejects.toMatchObject({ code: 'E_DATASET_INVALID', message: expect.stringContaining('labels/b.txt') });
  });

  test('ActivityNet segments: background added, bad segments rejected', async () => {
    const dir = join(root, 'segments');
    await touch(join(dir, 'videos', 'v1.mp4'));
    const ann = { database: { v1: { annotations: [{ label: 'jump', segment: [1, 2.5] }] } } };
    await touch(join(dir, 'annotations.json'), JSON.stringify(ann));
    const ds = await loadDataset(dir);
    expect(ds.classes).toEqual(['background', 'jump']);
    expect(labelsAtTimes(ds.videos[0]!.labels, [0, 999, 1000, 2499, 2500], 30)).toEqual(['background', 'background', 'jump', 'jump', 'background']);
    ann.database.v1.annotations[0]!.segment = [3, 2];
    await touch(join(dir, 'annotations.json'), JSON.stringify(ann));
    await expect(loadDataset(dir)).rejects.toMatchObject({ code: 'E_DATASET_INVALID' });
  });

  test('a missing folder and an empty one give clear codes', async () => {
    await expect(loadDataset(join(root, 'nope'))).rejects.toMatchObject({ code: 'E_INPUT_NOT_FOUND' });
    await mkdir(join(root, 'empty'));
    await expect(loadDataset(join(root, 'empty'))).rejects.toMatchObject({ code: 'E_DATASET_INVALID' });
  });
});

test('per-frame labels map onto resampled frames by source time', () => {
  const labels = { kind: 'frames' as const, labels: ['a', 'a', 'a', 'b', 'b', 'b'] };
  // Source at 30 fps, decoded at 10 fps: frames at 0, 100 ms -> source frames 0 and 3.
  expect(labelsAtTimes(labels, [0, 100, 1000], 30)).toEqual(['a', 'b', 'b']);
});

describe('splitDataset', () => {
  const videos = ['A1P1T1', 'A1P1T2', 'A2P1T1', 'A1P2T1', 'A2P2T1', 'A1P3T1'].map((name) => ({ name }));

  test('groups never straddle train and validation', () => {
    for (const seed of [0, 1, 2, 3]) {
      const { train, val } = splitDataset(videos, { valSplit: 0.34, seed, groupBy: /P(\d)/ });
      const g = (v: { name: string }) => /P(\d)/.exec(v.name)![1];
      expect(new Set(train.map(g)).size + new Set(val.map(g)).size).toBe(3);
      expect(train.map(g).filter((x) => val.map(g).includes(x))).toEqual([]);
      expect(val.length).toBeGreaterThan(0);
    }
  });

  test('same seed, same split, whatever the listing order; named groups go to validation', () => {
    const a = splitDataset(videos, { valSplit: 0.5, seed: 7 });
    const b = splitDataset([...videos].reverse(), { valSplit: 0.5, seed: 7 });
    expect(a.val.map((v) => v.name).sort()).toEqual(b.val.map((v) => v.name).sort());
    const byPerson = splitDataset(videos, { groupBy: /P(\d)/, valGroups: ['2'] });
    expect(byPerson.val.map((v) => v.name)).toEqual(['A1P2T1', 'A2P2T1']);
    expect(() => splitDataset(videos, { groupBy: /P(\d)/, valGroups: ['9'] })).toThrow(/not found/);
  });
});
