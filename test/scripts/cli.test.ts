// The CLI's own surface, in process: --version, one default per option in help, usage errors
// without a doubled prefix, and a closed stdout pipe ending quietly with success.
import { Writable } from 'node:stream';
import { expect, test } from 'vitest';
import { isClosedPipe, main } from '../../scripts/cli.ts';
import { FramewiseError, ErrorCodes } from '../../core/errors.ts';

function capture(onWrite?: (text: string) => void) {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  const wrapped = Object.assign(stream, {
    write: (chunk: string | Uint8Array) => {
      onWrite?.(String(chunk));
      text += String(chunk);
      return true;
    },
  }) as never;
  return { stream: wrapped, text: () => text };
}

test('--version prints the package version', async () => {
  const out = capture();
  expect(await main(['--version'], { stdout: out.stream, stderr: capture().stream })).toBe(0);
  expect(out.text()).toMatch(/^framewise \d+\.\d+\.\d+\n$/);
});

test('option help shows one default and the variable that sets it', async () => {
  const out = capture();
  expect(await main(['eval', '--help'], { stdout: out.stream, stderr: capture().stream })).toBe(0);
  const workers = out
    .text()
    .split('\n')
    .find((l) => l.includes('--workers'))!;
  expect(workers.match(/default:/g)).toHaveLength(1);
  expect(workers).toMatch(/\(default: \d+, the cores here; env FRAMEWISE_WORKERS\)$/);
  expect(out.text()).not.toMatch(/\) \(default/);
});

test('a missing subcommand is a usage error without a doubled prefix', async () => {
  const err = capture();
  expect(await main(['models'], { stdout: capture().stream, stderr: err.stream })).toBe(2);
  expect(err.text()).toMatch(/^framewise models: missing argument: <list \| export-onnx <id>> \[E_USAGE\]/);
  expect(err.text()).not.toMatch(/framewise models: framewise/);
});

test('a closed stdout pipe (EPIPE) ends with exit 0 and no message', async () => {
  const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
  expect(isClosedPipe(new FramewiseError(ErrorCodes.OUTPUT_FAILED, 'write failed', { cause: epipe }))).toBe(true);
  expect(isClosedPipe(new Error('other'))).toBe(false);
  const err = capture();
  const out = capture(() => {
    throw epipe;
  });
  expect(await main(['models', 'list'], { stdout: out.stream, stderr: err.stream })).toBe(0);
  expect(err.text()).toBe('');
});
