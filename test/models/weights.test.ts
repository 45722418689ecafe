import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { embedderInfo } from '../../models/registry.ts';
import {
  WEIGHTS_SIDECAR,
  cachedModelDir,
  expectedWeightBytes,
  findLocalWeights,
  loadFolderArtifacts,
  resolveWeights,
  type FetchLike,
} from '../../models/weights.ts';
import { FramewiseError } from '../../core/errors.ts';
import { MODELS_DIR } from '../helpers/real-models.ts';

const ID = 'mobilenet_v1_0.25_224';
const SHARED = join(MODELS_DIR, ID);
let tmp: string;

beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'framewise-weights-'));
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(tmp, { recursive: true, force: true });
});

/** A folder that resolution accepts: only model.json matters until the model is loaded. */
async function fakeModel(dir: string, extra: Record<string, string> = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.json'), '{}');
  for (const [name, text] of Object.entries(extra)) await writeFile(join(dir, name), text);
  return dir;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FramewiseError);
    return { code: (err as FramewiseError).code, message: (err as Error).message };
  }
  throw new Error('expected a rejection');
}

const offline: FetchLike = async () => {
  throw new TypeError('fetch failed: getaddrinfo ENOTFOUND tfhub.dev');
};

/** Serves the shared folder the way TF-Hub serves a tfjs model (hub models take input in [0, 1]). */
function fakeHub(calls: string[]): FetchLike {
  const base = embedderInfo(ID).officialUrl + '/';
  return async (url) => {
    calls.push(url);
    const m = url.startsWith(base) && url.endsWith('?tfjs-format=file') ? url.slice(base.length, -'?tfjs-format=file'.length) : undefined;
    const file = m === 'model.json' ? 'model-input01.json' : m;
    try {
      const b = await readFile(join(SHARED, file ?? '\0'));
      return { ok: true, status: 200, arrayBuffer: async () => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer };
    } catch {
      return { ok: false, status: 404, arrayBuffer: async () => new ArrayBuffer(0) };
    }
  };
}

describe('resolution order', () => {
  test('models dir first, then the cache', async () => {
    const modelsDir = join(tmp, 'models');
    const cacheDir = join(tmp, 'cache');
    await fakeModel(cachedModelDir(cacheDir, ID));
    expect(await resolveWeights(ID, { modelsDir, cacheDir, fetch: offline })).toMatchObject({ source: 'cache', dir: cachedModelDir(cacheDir, ID) });
    await fakeModel(join(modelsDir, ID));
    expect(await resolveWeights(ID, { modelsDir, cacheDir, fetch: offline })).toMatchObject({ source: 'models-dir', dir: join(modelsDir, ID) });
    const search = await findLocalWeights(ID, { modelsDir, cacheDir });
    expect(search.searched.map((s) => [s.source, s.present])).toEqual([
      ['models-dir', true],
      ['cache', true],
    ]);
  });

  test('a models folder without <id>/model.json falls through to the cache', async () => {
    const modelsDir = join(tmp, 'models');
    await mkdir(join(modelsDir, ID), { recursive: true }); // folder present, model.json missing
    const cacheDir = join(tmp, 'cache');
    await fakeModel(cachedModelDir(cacheDir, ID));
    expect((await resolveWeights(ID, { modelsDir, cacheDir, fetch: offline })).source).toBe('cache');
  });

  test('the sidecar inputRange is reported; a malformed sidecar is E_MODEL_INVALID', async () => {
    const modelsDir = join(tmp, 'models');
    await fakeModel(join(modelsDir, ID), { [WEIGHTS_SIDECAR]: JSON.stringify({ id: ID, inputRange: [0, 1] }) });
    expect((await resolveWeights(ID, { modelsDir, cacheDir: tmp })).inputRange).toEqual([0, 1]);
    await writeFile(join(modelsDir, ID, WEIGHTS_SIDECAR), '{"inputRange": [1, 0]}');
    expect((await codeOf(resolveWeights(ID, { modelsDir, cacheDir: tmp }))).code).toBe('E_MODEL_INVALID');
  });

  test('nothing local and downloads disabled: E_MODEL_NOT_FOUND naming every folder and the fix', async () => {
    const modelsDir = join(tmp, 'models');
    const cacheDir = join(tmp, 'cache');
    const fetch = vi.fn(offline);
    const { code, message } = await codeOf(resolveWeights(ID, { modelsDir, cacheDir, allowDownload: false, fetch }));
    expect(code).toBe('E_MODEL_NOT_FOUND');
    expect(message).toContain(join(modelsDir, ID));
    expect(message).toContain(cachedModelDir(cacheDir, ID));
    expect(message).toContain('FRAMEWISE_MODELS');
    expect(fetch).not.toHaveBeenCalled();
  });

  test('offline download: E_MODEL_NOT_FOUND naming the URL, and no partial folder left in the cache', async () => {
    const cacheDir = join(tmp, 'cache');
    const { code, message } = await codeOf(resolveWeights(ID, { cacheDir, fetch: offline }));
    expect(code).toBe('E_MODEL_NOT_FOUND');
    expect(message).toContain(embedderInfo(ID).officialUrl);
    expect(message).toContain('ENOTFOUND');
    expect(await readdir(join(cacheDir, 'models'))).toEqual([]);
  });

  test('an HTTP error half-way leaves nothing behind', async () => {
    const cacheDir = join(tmp, 'cache');
    const hub = fakeHub([]);
    let n = 0;
    const flaky: FetchLike = async (url) => (++n === 5 ? { ok: false, status: 503, arrayBuffer: async () => new ArrayBuffer(0) } : hub(url));
    const { code, message } = await codeOf(resolveWeights(ID, { cacheDir, fetch: flaky }));
    expect(code).toBe('E_MODEL_NOT_FOUND');
    expect(message).toContain('HTTP 503');
    expect(await readdir(join(cacheDir, 'models'))).toEqual([]);
  });

  test('download fetches the TF-Hub files once into the cache, with progress; later runs use the cache', async () => {
    const cacheDir = join(tmp, 'cache');
    const calls: string[] = [];
    const progress: string[] = [];
    const got = await resolveWeights(ID, { cacheDir, fetch: fakeHub(calls), onProgress: (m) => progress.push(m) });
    expect(got).toEqual({ id: ID, dir: cachedModelDir(cacheDir, ID), source: 'download', inputRange: [0, 1] });
    expect(calls[0]).toBe(`${embedderInfo(ID).officialUrl}/model.json?tfjs-format=file`);
    const manifest = JSON.parse(await readFile(join(SHARED, 'model-input01.json'), 'utf8')).weightsManifest as { paths: string[] }[];
    expect(calls.length).toBe(1 + manifest.flatMap((g) => g.paths).length);
    expect(progress.some((m) => /\d+\/\d+ weight files, [\d.]+ MB/.test(m))).toBe(true);
    expect(progress.at(-1)).toContain(cachedModelDir(cacheDir, ID));
    expect(await readdir(join(cacheDir, 'models'))).toEqual([ID]);

    const again = vi.fn(offline);
    expect(await resolveWeights(ID, { cacheDir, fetch: again })).toMatchObject({ source: 'cache', inputRange: [0, 1] });
    expect(again).not.toHaveBeenCalled();
    // What was stored is a loadable model of the right size.
    const artifacts = await loadFolderArtifacts(got.dir);
    expect(artifacts.weightSpecs?.length).toBeGreaterThan(50);
  });

  test('FRAMEWISE_MODELS is not read by resolveWeights itself (callers pass it as modelsDir)', async () => {
    vi.stubEnv('FRAMEWISE_MODELS', MODELS_DIR);
    const { code } = await codeOf(resolveWeights(ID, { cacheDir: join(tmp, 'cache'), allowDownload: false }));
    expect(code).toBe('E_MODEL_NOT_FOUND');
  });
});

describe('folder IOHandler', () => {
  test('reads model.json and every weight file of a real model', async () => {
    const artifacts = await loadFolderArtifacts(SHARED);
    const json = JSON.parse(await readFile(join(SHARED, 'model.json'), 'utf8'));
    expect(artifacts.format).toBe('graph-model');
    expect(artifacts.weightSpecs?.length).toBe(json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights).length);
    let bytes = 0;
    for (const g of json.weightsManifest) for (const p of g.paths) bytes += (await stat(join(SHARED, p))).size;
    const data = artifacts.weightData as ArrayBuffer[];
    expect(data.reduce((a, b) => a + b.byteLength, 0)).toBe(bytes);
    expect(expectedWeightBytes(artifacts.weightSpecs!)).toBe(bytes);
  });

  test('missing folder: E_MODEL_NOT_FOUND naming it', async () => {
    const dir = join(tmp, 'nope');
    const { code, message } = await codeOf(loadFolderArtifacts(dir));
    expect(code).toBe('E_MODEL_NOT_FOUND');
    expect(message).toContain(dir);
  });

  test('unreadable, non-model, layers-model and escaping model.json: E_MODEL_INVALID naming the file', async () => {
    const cases: [string, string, RegExp][] = [
      ['bad-json', '{ not json', /not valid JSON/],
      ['no-manifest', '{"modelTopology": {}}', /not a TF.js model/],
      ['layers', await readFile(join(SHARED, 'layers', 'model.json'), 'utf8'), /not a graph model/],
      [
        'escape',
        JSON.stringify({ format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [{ paths: ['../../etc/passwd'], weights: [] }] }),
        /leaves the model folder/,
      ],
    ];
    for (const [name, text, why] of cases) {
      const dir = join(tmp, name);
      await mkdir(dir);
      await writeFile(join(dir, 'model.json'), text);
      const { code, message } = await codeOf(loadFolderArtifacts(dir));
      expect(code, name).toBe('E_MODEL_INVALID');
      expect(message, name).toMatch(why);
      expect(message, name).toContain(dir);
    }
  });

  test('a missing or truncated weight file: E_MODEL_INVALID', async () => {
    const dir = join(tmp, 'copy');
    await cp(SHARED, dir, { recursive: true });
    await truncate(join(dir, 'group55-shard1of1'), 1000);
    const truncated = await codeOf(loadFolderArtifacts(dir));
    expect(truncated.code).toBe('E_MODEL_INVALID');
    expect(truncated.message).toMatch(/truncated/);
    await rm(join(dir, 'group12-shard1of1'));
    const missing = await codeOf(loadFolderArtifacts(dir));
    expect(missing.code).toBe('E_MODEL_INVALID');
    expect(missing.message).toContain('group12-shard1of1');
  });
});
