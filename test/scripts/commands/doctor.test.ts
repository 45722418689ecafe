import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultLoader } from '../../../models/backend.ts';
import { EMBEDDER_IDS } from '../../../models/registry.ts';
import { diagnose, renderReport } from '../../../scripts/commands/doctor.ts';
import { MODELS_DIR } from '../../helpers/real-models.ts';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'framewise-doctor-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('framewise doctor', () => {
  test('with the shared weights this machine can label: backend, ffmpeg, ffprobe and all embedders found', async () => {
    const r = await diagnose({ modelsDir: MODELS_DIR, cacheDir: join(tmp, 'cache') });
    expect(r.backend.choice?.name).toBeDefined();
    expect(r.tools.map((t) => [t.name, !!t.version, t.problem])).toEqual([
      ['ffmpeg', true, undefined],
      ['ffprobe', true, undefined],
    ]);
    expect(r.embedders.map((e) => [e.id, e.source, e.problem])).toEqual(EMBEDDER_IDS.map((id) => [id, 'models-dir', undefined]));
    expect(r.canLabel).toBe(true);
    const text = renderReport(r);
    expect(text).toMatch(/^backend +\S+/m);
    expect(text).toMatch(/^ready/m);
  });

  test('without weights it is not ready and names the fix for each embedder', async () => {
    const r = await diagnose({ modelsDir: join(tmp, 'none'), cacheDir: join(tmp, 'cache') });
    expect(r.canLabel).toBe(false);
    for (const e of r.embedders) {
      expect(e.problem).toBe('no local weights');
      expect(e.fix).toContain('FRAMEWISE_MODELS');
      expect(e.fix).toContain(join(tmp, 'cache', 'models', e.id));
    }
    expect(renderReport(r)).toMatch(/NOT READY/);
  });

  test('a forced backend that is absent makes it not ready', async () => {
    const gpuPresent = await defaultLoader('node-gpu').then(
      () => true,
      () => false,
    );
    if (gpuPresent) return; // a CUDA machine: nothing is absent to test with
    const r = await diagnose({ backend: 'node-gpu', modelsDir: MODELS_DIR, cacheDir: join(tmp, 'cache') });
    expect(r.backend.problem).toMatch(/tfjs-node-gpu/);
    expect(r.canLabel).toBe(false);
  });
});
