import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';
import { EMBEDDERS, EMBEDDER_IDS, embedderInfo } from '../../models/registry.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { FramewiseError } from '../../core/errors.ts';

const require = createRequire(import.meta.url);

describe('embedder registry', () => {
  test('holds the three MobileNets with their load arguments and dims', () => {
    expect(EMBEDDER_IDS).toEqual(['mobilenet_v2_1.0_224', 'mobilenet_v1_1.0_224', 'mobilenet_v1_0.25_224']);
    const summary = Object.values(EMBEDDERS).map(({ id, version, alpha, inputSize, dim }) => ({ id, version, alpha, inputSize, dim }));
    expect(summary).toEqual([
      { id: 'mobilenet_v2_1.0_224', version: 2, alpha: 1.0, inputSize: 224, dim: 1280 },
      { id: 'mobilenet_v1_1.0_224', version: 1, alpha: 1.0, inputSize: 224, dim: 1024 },
      { id: 'mobilenet_v1_0.25_224', version: 1, alpha: 0.25, inputSize: 224, dim: 256 },
    ]);
    expect(EMBEDDERS[DEFAULTS.embedder]).toBeDefined();
  });

  test('official URLs are the ones @tensorflow-models/mobilenet loads for that version and alpha', () => {
    const pkg = readFileSync(require.resolve('@tensorflow-models/mobilenet'), 'utf8');
    for (const info of Object.values(EMBEDDERS)) {
      // The package's MODEL_INFO: '<version>.00': { '<alpha>': { url: '...' } }
      const versionKey = `'${info.version.toFixed(2)}': {`;
      const block = pkg.slice(pkg.indexOf(versionKey) + versionKey.length);
      const at = block.indexOf(`'${info.alpha.toFixed(2)}': {`);
      expect(at, info.id).toBeGreaterThanOrEqual(0);
      expect(block.slice(at).match(/url: '([^']+)'/)?.[1], info.id).toBe(info.officialUrl);
    }
  });

  test('embedderInfo returns the entry; unknown ids are a usage error listing the known ones', () => {
    expect(embedderInfo('mobilenet_v1_0.25_224').dim).toBe(256);
    for (const bad of ['mobilenet_v3', '', 'toString', '__proto__']) {
      const err = (() => {
        try {
          embedderInfo(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(FramewiseError);
      expect((err as FramewiseError).code).toBe('E_USAGE');
      for (const id of EMBEDDER_IDS) expect((err as Error).message).toContain(id);
    }
  });

  test('entries cannot be changed by callers', () => {
    expect(Object.isFrozen(EMBEDDERS)).toBe(true);
    expect(Object.isFrozen(EMBEDDERS['mobilenet_v2_1.0_224'])).toBe(true);
    expect(() => ((EMBEDDERS['mobilenet_v2_1.0_224'] as { dim: number }).dim = 1)).toThrow();
  });
});
