import * as tf from '@tensorflow/tfjs';
import { describe, expect, test, vi } from 'vitest';
import { chooseBackend, defaultLoader, ensureBackend, parseBackendRequest, type BackendLoader, type BackendName } from '../../models/backend.ts';
import { rejection } from '../helpers/errors.ts';

/** A loader for which only `present` packages load; the others fail the way a missing package does. */
function loaderWith(present: BackendName[]): BackendLoader & { calls: BackendName[] } {
  const calls: BackendName[] = [];
  const fn = (async (name: BackendName) => {
    calls.push(name);
    if (!present.includes(name)) throw new Error(`Cannot find package '@tensorflow/tfjs-${name}'\nRequire stack: ...`);
    await defaultLoader(name);
  }) as BackendLoader & { calls: BackendName[] };
  fn.calls = calls;
  return fn;
}

describe('backend selection (injected loader)', () => {
  test('auto without the native packages falls back to wasm and says why each better one was skipped', async () => {
    const loader = loaderWith(['wasm', 'cpu']);
    const choice = await chooseBackend('auto', loader);
    expect(choice.name).toBe('wasm');
    expect(choice.tfBackend).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(loader.calls).toEqual(['node-gpu', 'node', 'wasm']);
    expect(choice.skipped.map((s) => s.name)).toEqual(['node-gpu', 'node']);
    // One line per reason, no stack.
    expect(choice.skipped[0].reason).toBe("Cannot find package '@tensorflow/tfjs-node-gpu'");
  });

  test('auto with wasm broken too falls back to cpu', async () => {
    const choice = await chooseBackend('auto', loaderWith(['cpu']));
    expect(choice.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(choice.skipped.map((s) => s.name)).toEqual(['node-gpu', 'node', 'wasm']);
  });

  test('a package that loads but registers no backend is skipped, not chosen', async () => {
    // The loader "succeeds" for node, but no 'tensorflow' backend exists in this process.
    const choice = await chooseBackend('auto', async (name) => {
      if (name === 'node-gpu') throw new Error('absent');
      if (name !== 'node') await defaultLoader(name);
    });
    expect(choice.name).toBe('wasm');
    expect(choice.skipped.find((s) => s.name === 'node')?.reason).toMatch(/tensorflow/);
  });

  test('a forced backend that is absent is E_BACKEND_UNAVAILABLE with the install hint, never a fallback', async () => {
    await chooseBackend('wasm', loaderWith(['wasm']));
    const err = await rejection(chooseBackend('node', loaderWith(['wasm', 'cpu'])));
    expect(err.code).toBe('E_BACKEND_UNAVAILABLE');
    expect(err.message).toContain('@tensorflow/tfjs-node');
    expect(err.message).toContain('libtensorflow');
    expect(tf.getBackend()).toBe('wasm');
  });

  test('nothing at all available is E_BACKEND_UNAVAILABLE', async () => {
    const err = await rejection(chooseBackend('auto', loaderWith([])));
    expect(err.code).toBe('E_BACKEND_UNAVAILABLE');
  });

  test('--backend / FRAMEWISE_BACKEND parsing', () => {
    expect(parseBackendRequest(undefined)).toBe('auto');
    expect(parseBackendRequest('')).toBe('auto');
    expect(parseBackendRequest('cpu')).toBe('cpu');
    expect(() => parseBackendRequest('gpu')).toThrow(/auto, node-gpu, node, wasm, cpu/);
  });
});

describe('backend selection (real packages on this machine)', () => {
  test('without tfjs-node (as here) auto picks wasm and forcing node is E_BACKEND_UNAVAILABLE', async () => {
    // CI machines with internet may have installed the optional native packages: then auto must
    // pick a native backend instead, which is asserted below in place of the fallback.
    const nativeInstalled = await defaultLoader('node').then(
      () => true,
      () => false,
    );
    const auto = await chooseBackend('auto');
    if (nativeInstalled) {
      expect(['node-gpu', 'node']).toContain(auto.name);
      return;
    }
    expect(auto.name).toBe('wasm');
    expect(auto.skipped.map((s) => s.name)).toEqual(['node-gpu', 'node']);
    const err = await rejection(chooseBackend('node'));
    expect(err.code).toBe('E_BACKEND_UNAVAILABLE');
    expect(err.message).toContain('@tensorflow/tfjs-node');
  });

  test('ensureBackend chooses once per process and prints the choice once', async () => {
    const log = vi.fn();
    const a = await ensureBackend('auto', log);
    const b = await ensureBackend('cpu', log); // later requests get the process-wide choice
    expect(b).toBe(a);
    expect(log).toHaveBeenCalledTimes(1);
    expect(log.mock.calls[0][0]).toMatch(/backend wasm/);
  });
});
