import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  defaultEmbeddingPath,
  hashFile,
  matchingEmbeddingFile,
  readEmbeddingFile,
  writeEmbeddingFile,
  type EmbeddingFileHeader,
} from '../../models/embedding-file.ts';
import { FramewiseError } from '../../core/errors.ts';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'framewise-emb-'));
});
afterEach(() => rm(tmp, { recursive: true, force: true }));

function sample(frames: number, dim: number) {
  const embeddings = Array.from({ length: frames }, (_, i) => Float32Array.from({ length: dim }, (_, j) => Math.sin(i * 31 + j) * 1e3));
  const header: Omit<EmbeddingFileHeader, 'format' | 'version'> = {
    embedder: 'mobilenet_v1_0.25_224',
    dim,
    fps: 10,
    crop: 'center',
    decoder: 'test-decoder-1',
    source: { path: 'clips/a.mp4', sha256: 'ab'.repeat(32), bytes: 1234 },
    frames,
    timestampsMs: Array.from({ length: frames }, (_, i) => i * 100),
    augmentation: { flip: true },
  };
  return { header, embeddings };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(FramewiseError);
    return (err as FramewiseError).code;
  }
  throw new Error('expected a rejection');
}

describe('embedding file', () => {
  test('round-trips header and float32 values exactly, and leaves no temporary file', async () => {
    for (const [frames, dim] of [
      [7, 256],
      [1, 1280],
      [0, 1024],
      [3, 5],
    ]) {
      const path = join(tmp, `x-${frames}-${dim}.emb`);
      const { header, embeddings } = sample(frames, dim);
      await writeEmbeddingFile(path, header, embeddings);
      const back = await readEmbeddingFile(path);
      expect(back.header).toEqual({ format: 'framewise-embeddings', version: 1, ...header });
      expect(back.embeddings.length).toBe(frames);
      back.embeddings.forEach((e, i) => expect(Array.from(e)).toEqual(Array.from(embeddings[i])));
    }
    expect((await readdir(tmp)).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  test('the data is float32 little-endian after a 4-aligned JSON header', async () => {
    const path = join(tmp, 'x.emb');
    const { header, embeddings } = sample(2, 3);
    await writeEmbeddingFile(path, header, embeddings);
    const buf = await readFile(path);
    expect(buf.subarray(0, 8).toString('latin1')).toBe('FWEMB1\n\0');
    const h = buf.readUInt32LE(8);
    expect((12 + h) % 4).toBe(0);
    expect(JSON.parse(buf.subarray(12, 12 + h).toString()).embedder).toBe('mobilenet_v1_0.25_224');
    expect(buf.readFloatLE(12 + h + 4 * 4)).toBe(embeddings[1][1]);
    expect(buf.length).toBe(12 + h + 2 * 3 * 4);
  });

  test('bad files are E_MODEL_INVALID; a missing file is E_INPUT_NOT_FOUND', async () => {
    const path = join(tmp, 'x.emb');
    const { header, embeddings } = sample(4, 8);
    await writeEmbeddingFile(path, header, embeddings);
    const good = await readFile(path);

    await truncate(path, good.length - 4);
    expect(await code(readEmbeddingFile(path))).toBe('E_MODEL_INVALID');

    const wrongMagic = Buffer.from(good);
    wrongMagic[0] = 0x58;
    await writeFile(path, wrongMagic);
    expect(await code(readEmbeddingFile(path))).toBe('E_MODEL_INVALID');

    const h = good.readUInt32LE(8);
    const badJson = Buffer.from(good);
    badJson[12] = 0x20; // '{' -> ' '
    await writeFile(path, badJson);
    expect(await code(readEmbeddingFile(path))).toBe('E_MODEL_INVALID');

    const longHeader = Buffer.from(good);
    longHeader.writeUInt32LE(h + 1_000_000, 8);
    await writeFile(path, longHeader);
    expect(await code(readEmbeddingFile(path))).toBe('E_MODEL_INVALID');

    await writeFile(path, 'hello');
    expect(await code(readEmbeddingFile(path))).toBe('E_MODEL_INVALID');
    expect(await code(readEmbeddingFile(join(tmp, 'none.emb')))).toBe('E_INPUT_NOT_FOUND');
  });

  test('inconsistent headers are refused on write (E_USAGE) and nothing is written', async () => {
    const { header, embeddings } = sample(3, 4);
    const path = join(tmp, 'y.emb');
    expect(await code(writeEmbeddingFile(path, { ...header, frames: 4 }, embeddings))).toBe('E_USAGE');
    expect(await code(writeEmbeddingFile(path, { ...header, dim: 5 }, embeddings))).toBe('E_USAGE');
    expect(await code(writeEmbeddingFile(path, { ...header, timestampsMs: [0] }, embeddings))).toBe('E_USAGE');
    expect(await code(writeEmbeddingFile(path, { ...header, crop: 'zoom' as 'pad' }, embeddings))).toBe('E_USAGE');
    expect(await code(writeEmbeddingFile(path, { ...header, fps: 0 }, embeddings))).toBe('E_USAGE');
    expect(await readdir(tmp)).toEqual([]);
  });

  test('hashFile is the sha256 of the bytes; defaultEmbeddingPath names embedder, fps and crop', async () => {
    const path = join(tmp, 'video.bin');
    const bytes = Buffer.alloc(3_000_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
    await writeFile(path, bytes);
    expect(await hashFile(path)).toEqual({ sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length });
    expect(await code(hashFile(join(tmp, 'missing.mp4')))).toBe('E_INPUT_NOT_FOUND');
    const sha = 'f'.repeat(64);
    expect(defaultEmbeddingPath('/c', sha, 'mobilenet_v2_1.0_224', 10, 'center')).toBe(`/c/embeddings/${'f'.repeat(16)}.mobilenet_v2_1.0_224.10.center.emb`);
    expect(defaultEmbeddingPath('/c', sha, 'mobilenet_v2_1.0_224', null, 'pad')).toMatch(/\.src\.pad\.emb$/);
    expect(defaultEmbeddingPath('/c', sha, 'mobilenet_v2_1.0_224', 10, 'center', 'int8', 'appearance+motion')).toMatch(
      /\.mobilenet_v2_1\.0_224\.int8\.motion\.10\.center\.emb$/,
    );
  });

  test('matchingEmbeddingFile accepts only the same source, embedder, fps, crop and decoder', async () => {
    const path = join(tmp, 'z.emb');
    const { header, embeddings } = sample(2, 4);
    await writeEmbeddingFile(path, header, embeddings);
    const want = { embedder: header.embedder, fps: header.fps, crop: header.crop, sha256: header.source.sha256, decoder: header.decoder! };
    expect(await matchingEmbeddingFile(path, want)).toBe(true);
    expect(await matchingEmbeddingFile(path, { ...want, decoder: 'another-chain' })).toBe(false);
    expect(await matchingEmbeddingFile(path, { ...want, fps: 5 })).toBe(false);
    expect(await matchingEmbeddingFile(path, { ...want, sha256: '00' })).toBe(false);
    // A file from before the motion stream holds the embedding alone.
    expect(await matchingEmbeddingFile(path, { ...want, features: 'appearance' })).toBe(true);
    expect(await matchingEmbeddingFile(path, { ...want, features: 'appearance+motion' })).toBe(false);
    expect(await matchingEmbeddingFile(join(tmp, 'none'), want)).toBe(false);
  });
});
