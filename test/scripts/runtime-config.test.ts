// The environment is read once, by the CLI: FRAMEWISE_* variables resolve into one frozen config,
// a malformed one is a usage error that names it, and no library module reads process.env (the
// ffmpeg binary lookup aside).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, test } from 'vitest';
import { DEFAULTS } from '../../core/defaults.ts';
import { modelRequest } from '../../scripts/command.ts';
import { readRuntimeConfig } from '../../scripts/runtime-config.ts';
import { REPO_ROOT } from '../helpers/real-models.ts';

describe('readRuntimeConfig', () => {
  test('reads every FRAMEWISE_* variable into a frozen object', () => {
    const c = readRuntimeConfig({
      FRAMEWISE_BACKEND: 'wasm',
      FRAMEWISE_ENGINE: 'tfjs',
      FRAMEWISE_WORKERS: '3',
      FRAMEWISE_MODELS: '/m',
      FRAMEWISE_CACHE: '/c',
      FRAMEWISE_REDIS: 'redis://r:1',
      FRAMEWISE_TOKEN: 't',
    });
    expect(c).toEqual({ backend: 'wasm', engine: 'tfjs', precision: 'auto', workers: 3, modelsDir: '/m', cacheDir: '/c', redisUrl: 'redis://r:1', token: 't' });
    expect(Object.isFrozen(c)).toBe(true);
  });

  test('defaults: auto, the cores, the XDG cache, then ~/.cache', () => {
    const c = readRuntimeConfig({ XDG_CACHE_HOME: '/xdg' });
    expect(c.backend).toBe('auto');
    expect(c.engine).toBe('auto');
    expect(c.workers).toBeGreaterThanOrEqual(1);
    expect(c.modelsDir).toBeUndefined();
    expect(c.cacheDir).toBe('/xdg/framewise');
    expect(readRuntimeConfig({}).cacheDir).toBe(DEFAULTS.cacheDir);
  });

  test('a malformed variable is a usage error naming it', () => {
    expect(() => readRuntimeConfig({ FRAMEWISE_WORKERS: 'many' })).toThrow(/FRAMEWISE_WORKERS: workers must be an integer/);
    expect(() => readRuntimeConfig({ FRAMEWISE_ENGINE: 'cuda' })).toThrow(/FRAMEWISE_ENGINE: unknown engine/);
    expect(() => readRuntimeConfig({ FRAMEWISE_BACKEND: 'gpu' })).toThrow(/FRAMEWISE_BACKEND: unknown backend/);
  });

  test('an option given on the command line wins over the environment', () => {
    const runtime = readRuntimeConfig({ FRAMEWISE_ENGINE: 'onnx', FRAMEWISE_WORKERS: '4', FRAMEWISE_MODELS: '/env' });
    expect(modelRequest({ values: {}, runtime })).toMatchObject({ engine: 'onnx', workers: 4, modelsDir: '/env' });
    expect(modelRequest({ values: { engine: 'tfjs', workers: '1', 'models-dir': '/flag' }, runtime })).toMatchObject({
      engine: 'tfjs',
      workers: 1,
      modelsDir: '/flag',
    });
    expect(() => modelRequest({ values: { workers: '0' }, runtime })).toThrow(/--workers/);
  });
});

test('no module below scripts/ reads process.env, except the lookup of the ffmpeg binaries', () => {
  const readers: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'dist' && e.name !== 'node_modules') walk(p);
      } else if (/\.(ts|mjs)$/.test(e.name) && /process\.env/.test(readFileSync(p, 'utf8'))) {
        readers.push(relative(REPO_ROOT, p));
      }
    }
  };
  for (const layer of ['core', 'models', 'pipeline', 'training', 'server', 'queue', 'client']) walk(join(REPO_ROOT, layer));
  expect(readers.filter((f) => !/^core\/ffmpeg-binaries\.ts$/.test(f))).toEqual([]);
});
