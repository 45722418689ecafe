// Which stages the next run removes: only those of this host whose process is gone; stages of
// live runs, of other hosts (a shared folder) and of the queue are left alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { openStage, removeStaleStages, STAGING_DIR } from '../../../pipeline/sinks/staging.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('removes dead local stages (reporting their files) and half-removed ones; keeps live, foreign and queue stages', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-stage-'));
  dirs.push(dir);
  const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid!; // exited: its pid is free
  const host = os.hostname();
  const root = path.join(dir, STAGING_DIR);
  const make = (name: string, files: string[]) => {
    fs.mkdirSync(path.join(root, name), { recursive: true });
    for (const f of files) fs.writeFileSync(path.join(root, name, f), 'x');
  };
  make(`label.${host}.${dead}.k1`, ['clip.vtt', 'clip.csv']);
  make(`label.${host}.${dead}.k2.removing`, ['other.vtt']);
  make(`label.${host}.${process.pid}.live`, ['live.vtt']);
  make(`label.some-other-host.example.${dead}.far`, ['far.vtt']);
  make(`0123abcd.${host}.${dead}.q1`, ['job.vtt']);
  const live = openStage(dir);

  const removed = removeStaleStages(dir);
  expect(removed.map((f) => path.basename(f)).sort()).toEqual(['clip.csv', 'clip.vtt']);
  expect(fs.readdirSync(root).sort()).toEqual(
    [`0123abcd.${host}.${dead}.q1`, `label.${host}.${process.pid}.live`, path.basename(live.dir), `label.some-other-host.example.${dead}.far`].sort(),
  );
  expect(removeStaleStages(dir)).toEqual([]); // nothing left to report
  live.discard();
  expect(fs.existsSync(live.dir)).toBe(false);
});
