// A clip of one frame is data like any other: ffmpeg's fps filter emits nothing for it, so the
// embedding pass used to give it 0 frames and `train` crashed on the empty sequence. Now it gives
// the frame (in every view), an empty cache entry left by the old decoder is recomputed, and
// temporal jitter keeps a one-frame sequence whole.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { seededRandom } from '../../core/seeded-random.ts';
import { loadEmbedder, type Embedder } from '../../models/embedder.ts';
import { readEmbeddingFile, writeEmbeddingFile } from '../../models/embedding-file.ts';
import { embedDataset } from '../../training/embed-dataset.ts';
import { temporalJitter } from '../../training/sequences.ts';
import { MODELS_DIR } from '../helpers/real-models.ts';
import { TEST_EMBEDDER } from '../helpers/trained-bundle.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';

const dir = tmpDir('framewise-short-clips-');
let embedder: Embedder;
let one: string;
beforeAll(async () => {
  embedder = await loadEmbedder({ id: TEST_EMBEDDER, modelsDir: MODELS_DIR });
  one = await makeClip({ durationSec: 1, fps: 25, width: 320, height: 240, extra: ['-frames:v', '1'], dir: dir.path });
}, 120_000);
afterAll(() => {
  embedder?.dispose();
  dir.cleanup();
});

test('a one-frame clip gets its frame and label in every view at 10 fps; a stale empty cache entry is recomputed', async () => {
  const cacheDir = join(dir.path, 'cache');
  const videos = [{ name: 'wave/one', path: one, labels: { kind: 'clip' as const, label: 'wave' } }];
  const o = { embedder, classes: ['sit', 'wave'], fps: 10, crop: 'center' as const, cacheDir, copies: 1, seed: 3 };
  const skipped: string[] = [];
  const [views] = await embedDataset(videos, { ...o, onSkip: (name) => skipped.push(name) });
  expect(skipped).toEqual([]);
  expect(views!.map((v) => [v.embeddings.length, Array.from(v.labels), v.timestampsMs])).toEqual([
    [1, [1], [0]],
    [1, [1], [0]],
  ]);
  const jittered = temporalJitter(views![0]!, { rand: seededRandom(1), speed: [0.8, 1.25], dropProb: 0.9 });
  expect(jittered.embeddings.length).toBeGreaterThan(0);
  expect(jittered.embeddings.every((e) => e instanceof Float32Array)).toBe(true);

  // What the old decoder cached for this clip: a matching header with 0 frames.
  const files = readdirSync(cacheDir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.center.emb'));
  expect(files).toHaveLength(1);
  const file = join(cacheDir, files[0]!);
  const { header } = await readEmbeddingFile(file);
  await writeEmbeddingFile(file, { ...header, frames: 0, timestampsMs: [] }, []);
  const [again] = await embedDataset(videos, { ...o, copies: 0 });
  expect(again!.map((v) => v.embeddings.length)).toEqual([1]);
  expect((await readEmbeddingFile(file)).embeddings).toHaveLength(1);
}, 120_000);
