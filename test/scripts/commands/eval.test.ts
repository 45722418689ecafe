// `framewise eval -o DIR` settles its report folder before any work: a missing folder is created
// at once, an impossible one fails at once with E_OUTPUT_FAILED (it used to crash after the whole
// evaluation). The model and data here do not exist, so any later step would fail differently.
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { REPO_ROOT } from '../../helpers/real-models.ts';
import { tmpDir } from '../../helpers/video.ts';

const BIN = resolve(REPO_ROOT, 'bin/framewise.js');
const dir = tmpDir('framewise-eval-cli-');
afterAll(() => dir.cleanup());

const evalCli = (out: string) =>
  spawnSync(process.execPath, [BIN, 'eval', '--model', join(dir.path, 'no-bundle'), '--data', join(dir.path, 'no-data'), '-o', out], { encoding: 'utf8' });

test('the report folder is created before the work, or refused before it', () => {
  const fresh = join(dir.path, 'new', 'reports');
  const r1 = evalCli(fresh);
  expect(existsSync(fresh)).toBe(true);
  expect(r1.stderr).toMatch(/no-bundle/); // then the (missing) model is what fails

  const blocker = join(dir.path, 'a-file');
  writeFileSync(blocker, 'not a folder');
  const r2 = evalCli(join(blocker, 'reports'));
  expect(r2.status).toBe(1);
  expect(r2.stderr).toMatch(/a-file.*E_OUTPUT_FAILED/s);
  expect(r2.stderr).not.toMatch(/no-bundle/);
});
