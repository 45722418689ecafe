// What serve leaves behind when it stops: the jobs folder it made itself (uploads, job outputs)
// is removed, also while a job is still running; a jobs folder the caller named is kept whole.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import type { JobMessage } from '../../server/protocol.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { connectLive } from '../../server/ws-client.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';
import { loadTestEmbedder, testModel } from './fixtures.ts';

const dir = tmpDir('framewise-cleanup-test-');
let embedder: Embedder;
let model: LoadedModel;
let clip: Buffer;
let longClip: Buffer;

beforeAll(async () => {
  embedder = await loadTestEmbedder();
  model = testModel(embedder);
  clip = readFileSync(await makeClip({ durationSec: 0.4, fps: 10, width: 64, height: 64, dir: dir.path }));
  longClip = readFileSync(await makeClip({ durationSec: 30, fps: 10, width: 64, height: 64, dir: dir.path }));
});

afterAll(() => {
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

/** Uploads `body` as a job and waits until it has `status` (or any status when 'running' and it already finished). */
async function upload(server: RunningServer, body: Buffer, until: (m: JobMessage) => boolean): Promise<string> {
  const r = await fetch(`${server.url}/api/jobs?name=clip.mp4`, { method: 'POST', body: new Uint8Array(body) });
  expect(r.status).toBe(202);
  const { job } = (await r.json()) as { job: { id: string } };
  const c = await connectLive(server.url);
  try {
    c.sendJson({ type: 'subscribe', jobId: job.id });
    await c.next<JobMessage>((m) => m.type === 'job' && until(m), 30_000);
  } finally {
    await c.close();
  }
  return job.id;
}

test('the default jobs folder is removed at close, with a job still running', async () => {
  let server: RunningServer | undefined;
  try {
    server = await createServer({ model, port: 0, clientDir: dir.path, cacheDir: join(dir.path, 'cache') });
    const done = await upload(server, clip, (m) => m.job.status === 'done');
    const running = await upload(server, longClip, (m) => m.job.status === 'running' && m.job.framesDone > 0);
    expect(server.jobsDir.startsWith(join(dir.path, 'cache'))).toBe(true);
    expect(readdirSync(server.jobsDir).sort()).toEqual([done, running].sort());
    await server.close();
    expect(existsSync(server.jobsDir)).toBe(false);
  } finally {
    await server?.close();
  }
});

test('a jobs folder the caller named is kept', async () => {
  const jobsDir = join(dir.path, 'my-jobs');
  const server = await createServer({ model, port: 0, clientDir: dir.path, jobsDir });
  let id: string;
  try {
    id = await upload(server, clip, (m) => m.job.status === 'done');
  } finally {
    await server.close();
  }
  expect(readdirSync(join(jobsDir, id)).sort()).toEqual(['clip.csv', 'clip.frames.jsonl', 'clip.segments.json', 'clip.vtt', 'upload.mp4']);
});
