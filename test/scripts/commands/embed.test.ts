import { MOTION_DIM } from '../../../models/motion.ts';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readRuntimeConfig } from '../../../scripts/runtime-config.ts';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readEmbeddingFile } from '../../../models/embedding-file.ts';
import { parseCommand } from '../../../scripts/command.ts';
import { command } from '../../../scripts/commands/embed.ts';
import { FramewiseError } from '../../../core/errors.ts';
import { MODELS_DIR } from '../../helpers/real-models.ts';

let tmp: string;
let clip: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'framewise-embed-cmd-'));
  clip = join(tmp, 'clip.mp4');
  // 2 s at 25 fps, 320x180 (16:9, so the centre crop matters).
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25:duration=2', '-pix_fmt', 'yuv420p', clip]);
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (b) => (out += b));
  stderr.on('data', (b) => (err += b));
  const { positionals, values } = parseCommand(command, args);
  const code = await command.run({ positionals, values, stdout, stderr, runtime: readRuntimeConfig({}) });
  return { code, out, err };
}

describe('framewise embed', () => {
  const common = () => ['--embedder', 'mobilenet_v1_0.25_224', '--models-dir', MODELS_DIR, '--cache-dir', join(tmp, 'cache')];

  test('writes an embedding file in the cache, prints its path, and reuses it on the next run', async () => {
    const first = await run([clip, '--fps', '5', '--features', 'appearance', ...common()]);
    expect(first.code).toBe(0);
    const path = first.out.trim();
    expect(path).toMatch(new RegExp(`^${join(tmp, 'cache', 'embeddings')}/[0-9a-f]{16}\\.mobilenet_v1_0\\.25_224\\.5\\.center\\.emb$`));
    const { header, embeddings } = await readEmbeddingFile(path);
    expect(header).toMatchObject({ embedder: 'mobilenet_v1_0.25_224', dim: 256, fps: 5, crop: 'center', frames: 10, features: 'appearance' });
    expect(header.source).toMatchObject({ path: clip, bytes: (await stat(clip)).size });
    expect(header.source.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(header.timestampsMs).toEqual([0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800]);
    expect(embeddings.every((e) => e.length === 256 && e.every(Number.isFinite))).toBe(true);
    // testsrc moves: consecutive frames differ.
    expect(embeddings[0].some((v, i) => Math.abs(v - embeddings[5][i]) > 1e-3)).toBe(true);

    const mtime = (await stat(path)).mtimeMs;
    const again = await run([clip, '--fps', '5', '--features', 'appearance', ...common()]);
    expect(again.out.trim()).toBe(path);
    expect(again.err).toContain('up to date');
    expect((await stat(path)).mtimeMs).toBe(mtime);

    // The default features carry the motion stream after the embedding: another file, the same embeddings first.
    const motion = await run([clip, '--fps', '5', ...common()]);
    expect(motion.out.trim()).toMatch(/\.mobilenet_v1_0\.25_224\.motion\.5\.center\.emb$/);
    const withMotion = await readEmbeddingFile(motion.out.trim());
    expect(withMotion.header).toMatchObject({ dim: 256 + MOTION_DIM, features: 'appearance+motion' });
    withMotion.embeddings.forEach((e, t) => expect(Array.from(e.subarray(0, 256))).toEqual(Array.from(embeddings[t]!)));
    expect(withMotion.embeddings.slice(1).some((e) => e.subarray(256).some((v) => v > 0))).toBe(true);
  });

  test('--out, --crop pad and --fps source are honoured', async () => {
    const out = join(tmp, 'x.emb');
    const r = await run([clip, '--fps', 'source', '--crop', 'pad', '--out', out, ...common()]);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(out);
    const { header } = await readEmbeddingFile(out);
    expect(header).toMatchObject({ fps: null, crop: 'pad', frames: 50 });
    expect(header.timestampsMs[1]).toBeCloseTo(40, 0);
  });

  test('bad input and options fail with their codes', async () => {
    const code = async (args: string[]) => {
      try {
        await run(args);
      } catch (err) {
        expect(err).toBeInstanceOf(FramewiseError);
        return (err as FramewiseError).code;
      }
      return 'ok';
    };
    expect(await code([join(tmp, 'missing.mp4'), ...common()])).toBe('E_INPUT_NOT_FOUND');
    expect(await code(['-', ...common()])).toBe('E_USAGE');
    expect(await code([clip, '--crop', 'zoom', ...common()])).toBe('E_USAGE');
    expect(await code([clip, '--fps', '0', ...common()])).toBe('E_USAGE');
    expect(await code([clip, ...common(), '--embedder', 'resnet'])).toBe('E_USAGE');
  });
});
