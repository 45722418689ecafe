import { expect } from 'vitest';
import { FramewiseError } from '../../core/errors.ts';

/** Awaits a promise that must reject with a FramewiseError, and returns that error. */
export async function rejection(p: Promise<unknown>): Promise<FramewiseError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FramewiseError);
    return err as FramewiseError;
  }
  throw new Error('expected a rejection');
}
