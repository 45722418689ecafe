import { expect, test } from 'vitest';
import { ErrorCodes } from '../../../core/errors.ts';
import { configFromOptions } from '../../../scripts/commands/train.ts';

const request = { modelsDir: undefined, cacheDir: '/tmp/framewise-test' };
const config = (gain?: string) => configFromOptions({ data: 'clips', out: 'bundle', ...(gain === undefined ? {} : { 'motion-gain': gain }) }, request);

test('--motion-gain takes auto (the default) or a positive number, and refuses anything else with a usage error', () => {
  expect(config().motionGain).toBe('auto');
  expect(config('auto').motionGain).toBe('auto');
  expect(config('2.5').motionGain).toBe(2.5);
  for (const bad of ['0', '-1', 'fast'])
    expect(() => config(bad)).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE, message: expect.stringContaining('--motion-gain') }));
});
