// Inputs as typed: a path that exists is that file even when its name has glob characters; a
// pattern is expanded only when no such path exists; a missing path or a pattern that matches
// nothing stays in the list, so that the run reports it as a failed input instead of skipping it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { expandInputs } from '../../pipeline/inputs.ts';
import { tmpDir } from '../helpers/video.ts';

const dir = tmpDir('framewise-inputs-');
afterAll(() => dir.cleanup());

test('existing files named like globs are taken literally; patterns still expand; no match is kept', async () => {
  const names = ['clip (1).mp4', 'take[2].mov', 'star*.mp4', 'what?.mp4', 'plain.mp4'];
  for (const n of names) writeFileSync(join(dir.path, n), 'x');
  mkdirSync(join(dir.path, 'folder[a]'));
  writeFileSync(join(dir.path, 'folder[a]', 'inner.mp4'), 'x');
  for (const n of names) {
    expect(await expandInputs([join(dir.path, n)]), n).toEqual([{ source: join(dir.path, n), name: n.replace(/\.\w+$/, '') }]);
  }
  // Beside another input, the literal file is still there (it used to vanish silently).
  const two = await expandInputs([join(dir.path, 'plain.mp4'), join(dir.path, 'clip (1).mp4')]);
  expect(two.map((i) => i.source)).toEqual([join(dir.path, 'plain.mp4'), join(dir.path, 'clip (1).mp4')]);
  expect((await expandInputs([join(dir.path, 'folder[a]')])).map((i) => i.name)).toEqual(['inner']);
  expect((await expandInputs([join(dir.path, '*.mov')])).map((i) => resolve(i.source))).toEqual([join(dir.path, 'take[2].mov')]);
  const none = join(dir.path, 'nothing-*.webm');
  expect(await expandInputs([none])).toEqual([{ source: none, name: 'nothing-*' }]);
});
