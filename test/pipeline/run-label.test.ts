// labelVideo (the offline pipeline for one input) on inputs that end badly: every frame the decoder
// delivers from a truncated file is written before the decode error is reported.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { FramewiseError } from '../../core/errors.ts';
import type { Embedder } from '../../models/embedder.ts';
import { decodeFrames } from '../../pipeline/decode.ts';
import { labelVideo } from '../../pipeline/run-label.ts';
import { embedCredit } from '../../pipeline/embed-stage.ts';
import { toFrameLabel } from '../../pipeline/frame-label.ts';
import { frameLine } from '../../pipeline/sinks/jsonl.ts';
import type { Frame } from '../../core/types.ts';
import type { LoadedModel } from '../../server/server.ts';
import { makeClip, tmpDir, truncateCopy } from '../helpers/video.ts';
import { loadTestEmbedder, testModel } from '../server/fixtures.ts';

const dir = tmpDir('framewise-run-label-');
let embedder: Embedder;
let model: LoadedModel;

beforeAll(async () => {
  embedder = await loadTestEmbedder();
  model = testModel(embedder);
});

afterAll(() => {
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

const run = (input: string, name: string, outDir = join(dir.path, 'out')) =>
  labelVideo({
    model: { head: model.head, embedder, meta: { classes: model.meta.classes, fps: null, crop: 'center' } },
    input,
    name,
    outDir,
    formats: ['jsonl', 'activitynet'],
  });

test('a truncated file: every decoded frame is in the JSONL, then E_DECODE_FAILED', async () => {
  const clip = await makeClip({ durationSec: 8, fps: 10, width: 160, height: 120, dir: dir.path });
  const truncated = truncateCopy(clip, dir.path, 0.6); // faststart: the header is whole, the data cut
  let decoded = 0;
  const decodeError = await (async () => {
    for await (const f of decodeFrames(truncated, { size: 224 })) decoded = f.index + 1;
  })().catch((e: unknown) => e);
  expect((decodeError as FramewiseError).code).toBe('E_DECODE_FAILED');
  expect(decoded).toBeGreaterThan(20);

  const err = (await run(truncated, 'cut').catch((e: unknown) => e)) as FramewiseError;
  expect(err.code).toBe('E_DECODE_FAILED');
  const lines = readFileSync(join(dir.path, 'out', 'cut.frames.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { index: number });
  expect(lines.map((l) => l.index)).toEqual(Array.from({ length: decoded }, (_, i) => i));
});

test('a clip longer than the frames in flight: every frame labeled, lines equal to the head stepped frame by frame', async () => {
  // More frames than the credit loop starts with (embed credit + one chunk), so the chunked label
  // stage must give credit back per frame it stands for, or the run stalls.
  const clip = await makeClip({ durationSec: 12, fps: 10, width: 160, height: 120, dir: dir.path });
  const result = await run(clip, 'long');
  const frames: Frame[] = [];
  for await (const f of decodeFrames(clip, { size: embedder.inputSize, crop: 'center' })) frames.push(f);
  expect(result.frames).toBe(frames.length);
  expect(frames.length).toBeGreaterThan(embedCredit() + 16);
  const embeddings = await embedder.embed(frames);
  let state = model.head.zeroState();
  const expected = frames.map((f, i) => {
    const step = model.head.step(state, [embeddings[i]!]);
    state = step.state;
    return frameLine(toFrameLabel({ ...f, embedding: embeddings[i]! }, step.probs[0]!, model.meta.classes), model.meta.classes);
  });
  expect(readFileSync(join(dir.path, 'out', 'long.frames.jsonl'), 'utf8')).toBe(expected.join(''));
});
