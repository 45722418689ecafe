// The WebSocket protocol end to end against a real server (mobilenet_v1_0.25_224 + a small seeded
// head): labels per frame in order and equal to the offline computation, separate states for
// concurrent sessions, resets, every kind of bad message answered with E_PROTOCOL while the
// session keeps working, the session cap, the heartbeat, file jobs, and path traversal refusals.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import jpeg from 'jpeg-js';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { Embedder } from '../../models/embedder.ts';
import type { Frame } from '../../core/types.ts';
import { encodeFrame, FRAME_HEADER_BYTES, type DroppedMessage, type ErrorMessage, type JobMessage, type LabelMessage } from '../../server/protocol.ts';
import { createServer, type LoadedModel, type RunningServer } from '../../server/server.ts';
import { connectLive, openSocket, type LiveClient } from '../../server/ws-client.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';
import { decodeAll, loadTestEmbedder, testModel } from './fixtures.ts';

let embedder: Embedder;
let model: LoadedModel;
let server: RunningServer;
let framesA: Frame[];
let framesB: Frame[];
const dir = tmpDir('framewise-serve-test-');
const clients: LiveClient[] = [];

beforeAll(async () => {
  embedder = await loadTestEmbedder();
  model = testModel(embedder);
  const media = join(dir.path, 'media');
  mkdirSync(join(media, 'sub'), { recursive: true });
  const a = await makeClip({ durationSec: 1.2, fps: 10, width: 160, height: 120, dir: media });
  const b = await makeClip({ durationSec: 1.2, fps: 10, width: 160, height: 120, dir: dir.path, filters: ['negate', 'hflip'] });
  framesA = await decodeAll(a);
  framesB = await decodeAll(b);
  writeFileSync(join(dir.path, 'secret.mp4'), 'outside the media folder');
  symlinkSync(join(dir.path, 'secret.mp4'), join(media, 'sub', 'escape.mp4'));
  symlinkSync(a, join(media, 'sub', 'inside.mp4'));
  server = await createServer({ model, port: 0, mediaDir: media, jobsDir: join(dir.path, 'jobs'), clientDir: join(dir.path, 'no-client') });
});

afterAll(async () => {
  await server?.close();
  model?.head.dispose();
  embedder?.dispose();
  dir.cleanup();
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function client(): Promise<LiveClient> {
  const c = await connectLive(server.url, 'test');
  clients.push(c);
  return c;
}

/** Offline reference: the same frames embedded and run through the head from the zero state. */
async function reference(frames: Frame[]): Promise<Float32Array[]> {
  return model.head.predict(await embedder.embed(frames));
}

const isLabel = (m: { type: string }) => m.type === 'label';
const isError = (m: { type: string }) => m.type === 'error';

function expectClose(actual: number[], expected: Float32Array): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
}

describe('live sessions', () => {
  test('welcome describes the model; one label per frame, in order, equal to the offline pipeline', async () => {
    const c = await client();
    expect(c.welcome.model).toMatchObject({ classes: ['a', 'b', 'c'], embedderId: 'mobilenet_v1_0.25_224', inputSize: 224 });
    expect(c.welcome.limits.maxPayload).toBeGreaterThanOrEqual(FRAME_HEADER_BYTES + 224 * 224 * 3);
    const tensors = tf.memory().numTensors;
    const labels: LabelMessage[] = [];
    for (const f of framesA) {
      c.sendFrame({ index: f.index, timestampMs: 1000 + f.timestampMs }, f.rgb);
      labels.push(await c.next<LabelMessage>(isLabel));
    }
    expect(labels.map((l) => l.index)).toEqual(framesA.map((f) => f.index));
    expect(labels.map((l) => l.timestampMs)).toEqual(framesA.map((f) => 1000 + f.timestampMs));
    const ref = await reference(framesA);
    labels.forEach((l, i) => {
      expect(l.streamId).toBe(labels[0]!.streamId);
      expectClose(l.probs, ref[i]!);
      expect(l.score).toBeCloseTo(Math.max(...ref[i]!), 4);
      expect(l.label).toBe(['a', 'b', 'c'][ref[i]!.indexOf(Math.max(...ref[i]!))]);
    });
    expect(tf.memory().numTensors).toBe(tensors);
  });

  test('sent all at once: labels come in increasing order and every frame is either labeled or reported dropped', async () => {
    const c = await client();
    for (const f of framesA) c.sendFrame({ index: f.index, timestampMs: f.timestampMs }, f.rgb);
    const last = framesA.at(-1)!.index;
    await c.next((m) => (m.type === 'label' || m.type === 'dropped') && m.index === last);
    const labeled = c.messages.filter(isLabel).map((m) => m.index);
    const dropped = c.messages.filter((m): m is DroppedMessage => m.type === 'dropped').flatMap((m) => m.frames);
    expect(labeled).toEqual([...labeled].sort((x, y) => x - y));
    expect([...labeled, ...dropped].sort((x, y) => x - y)).toEqual(framesA.map((f) => f.index));
    expect(labeled).toContain(last);
  });

  test('two concurrent sessions keep separate states: each equals its stream run alone', async () => {
    const [c1, c2] = await Promise.all([client(), client()]);
    expect(c1.welcome.streamId).not.toBe(c2.welcome.streamId);
    const n = Math.min(framesA.length, framesB.length);
    const got: [number[][], number[][]] = [[], []];
    for (let i = 0; i < n; i++) {
      c1.sendFrame({ index: i, timestampMs: i }, framesA[i]!.rgb);
      c2.sendFrame({ index: i, timestampMs: i }, framesB[i]!.rgb);
      const [l1, l2] = await Promise.all([c1.next<LabelMessage>(isLabel), c2.next<LabelMessage>(isLabel)]);
      expect([l1.index, l2.index]).toEqual([i, i]);
      got[0].push(l1.probs);
      got[1].push(l2.probs);
    }
    const [refA, refB] = [await reference(framesA.slice(0, n)), await reference(framesB.slice(0, n))];
    got[0].forEach((p, i) => expectClose(p, refA[i]!));
    got[1].forEach((p, i) => expectClose(p, refB[i]!));
    // The two streams differ, so equal results would mean a shared state or a mix-up.
    expect(got[0][n - 1]).not.toEqual(got[1][n - 1]);
  });

  test('reset clears the state and the frame counter', async () => {
    const c = await client();
    for (const f of framesB.slice(0, 5)) {
      c.sendFrame({ index: f.index, timestampMs: f.timestampMs }, f.rgb);
      await c.next(isLabel);
    }
    c.sendJson({ type: 'reset' });
    const ack = await c.next((m) => m.type === 'reset');
    expect(ack).toMatchObject({ index: -1, streamId: c.welcome.streamId });
    c.sendFrame({ index: 0, timestampMs: 0 }, framesA[0]!.rgb);
    const l = await c.next<LabelMessage>(isLabel);
    expect(l.index).toBe(0);
    expectClose(l.probs, (await reference(framesA.slice(0, 1)))[0]!);
  });

  test('a JPEG frame is decoded and labeled like its pixels', async () => {
    const c = await client();
    const f = framesA[3]!;
    const rgba = new Uint8Array(224 * 224 * 4);
    for (let i = 0, j = 0; j < f.rgb.length; i += 4, j += 3) rgba.set([f.rgb[j]!, f.rgb[j + 1]!, f.rgb[j + 2]!, 255], i);
    const jpg = jpeg.encode({ data: rgba, width: 224, height: 224 }, 95).data;
    c.sendFrame({ index: 0, timestampMs: 0, format: 'jpeg' }, new Uint8Array(jpg));
    const l = await c.next<LabelMessage>(isLabel);
    const ref = (await reference([f]))[0]!;
    // JPEG is lossy: close, not equal.
    l.probs.forEach((p, i) => expect(Math.abs(p - ref[i]!)).toBeLessThan(0.05));
  });
});

describe('bad input gets an error message and the session keeps serving', () => {
  test('malformed, unknown, wrong-size, out-of-order and early messages', async () => {
    // Before hello.
    const raw = openSocket(server.url);
    const early = await new Promise<ErrorMessage>((ok) => {
      raw.on('open', () => raw.send(encodeFrame({ index: 0, timestampMs: 0, format: 'rgb24', width: 224, height: 224 }, framesA[0]!.rgb)));
      raw.on('message', (d) => ok(JSON.parse(String(d)) as ErrorMessage));
    });
    expect(early).toMatchObject({ type: 'error', code: 'E_PROTOCOL' });
    expect(early.message).toMatch(/hello/);
    raw.close();

    const c = await client();
    const f = framesA[0]!;
    const expectError = async (send: () => void, pattern: RegExp, index?: number) => {
      send();
      const e = await c.next<ErrorMessage>(isError);
      expect(e.code).toBe('E_PROTOCOL');
      expect(e.message).toMatch(pattern);
      expect(e.streamId).toBe(c.welcome.streamId);
      if (index !== undefined) expect(e.index).toBe(index);
    };
    await expectError(() => c.ws.send('{not json'), /not valid JSON/);
    await expectError(() => c.ws.send('[1,2]'), /JSON object/);
    await expectError(() => c.sendJson({ type: 'dance' }), /unknown message type/);
    await expectError(() => c.sendJson({ type: 'hello', version: 1 }), /already/);
    await expectError(() => c.sendJson({ type: 'subscribe', jobId: '../../etc' }), /jobId/);
    await expectError(() => c.ws.send(new Uint8Array([1, 2, 3])), /shorter than/);
    await expectError(() => c.ws.send(new Uint8Array(FRAME_HEADER_BYTES + 10)), /magic/);
    await expectError(() => c.sendFrame({ index: 5, timestampMs: 0, width: 100, height: 100 }, new Uint8Array(100 * 100 * 3)), /100x100/, 5);
    await expectError(() => c.sendFrame({ index: 5, timestampMs: 0 }, f.rgb.subarray(1)), /needs 150528 payload bytes/, 5);
    // Oversized but under maxPayload: an error, the socket stays open.
    await expectError(() => c.sendFrame({ index: 5, timestampMs: 0 }, new Uint8Array(224 * 224 * 3 + 5000)), /payload bytes/, 5);

    c.sendFrame({ index: 7, timestampMs: 70 }, f.rgb);
    expect((await c.next<LabelMessage>(isLabel)).index).toBe(7);
    await expectError(() => c.sendFrame({ index: 7, timestampMs: 80 }, f.rgb), /out of order/, 7);
    await expectError(() => c.sendFrame({ index: 3, timestampMs: 80 }, f.rgb), /out of order/, 3);
    await expectError(() => c.sendFrame({ index: 8, timestampMs: 10 }, f.rgb), /timestamp/, 8);

    c.sendFrame({ index: 9, timestampMs: 90 }, f.rgb);
    expect((await c.next<LabelMessage>(isLabel)).index).toBe(9);
  });

  test('a message over maxPayload closes that socket (1009); the server keeps serving others', async () => {
    const victim = await client();
    const other = await client();
    victim.ws.send(new Uint8Array(victim.welcome.limits.maxPayload + 1));
    expect(await victim.closed).toBe(1009);
    other.sendFrame({ index: 0, timestampMs: 0 }, framesA[0]!.rgb);
    expect((await other.next<LabelMessage>(isLabel)).index).toBe(0);
  });

  test('a client speaking another protocol version is told so and closed', async () => {
    const raw = openSocket(server.url);
    const got = await new Promise<{ msg: ErrorMessage; code: number }>((ok) => {
      let msg: ErrorMessage;
      raw.on('open', () => raw.send(JSON.stringify({ type: 'hello', version: 99 })));
      raw.on('message', (d) => (msg = JSON.parse(String(d)) as ErrorMessage));
      raw.on('close', (code) => ok({ msg, code }));
    });
    expect(got.msg).toMatchObject({ type: 'error', code: 'E_PROTOCOL' });
    expect(got.msg.message).toMatch(/version 99/);
    expect(got.code).toBe(1002);
  });
});

describe('session cap and heartbeat', () => {
  test('past maxSessions a socket gets E_BUSY and close 1013', async () => {
    const small = await createServer({ model, port: 0, maxSessions: 1, clientDir: dir.path, jobsDir: join(dir.path, 'jobs2') });
    try {
      const first = await connectLive(small.url);
      await expect(connectLive(small.url)).rejects.toThrow(/E_BUSY.*1 sessions/);
      first.sendFrame({ index: 0, timestampMs: 0 }, framesA[0]!.rgb);
      expect((await first.next<LabelMessage>(isLabel)).index).toBe(0);
      await first.close();
    } finally {
      await small.close();
    }
  });

  test('a peer that stops answering pings is terminated', async () => {
    const hb = await createServer({ model, port: 0, heartbeatMs: 150, clientDir: dir.path, jobsDir: join(dir.path, 'jobs3') });
    try {
      const mute = openSocket(hb.url, { autoPong: false });
      const lively = await connectLive(hb.url);
      const code = await new Promise<number>((ok) => mute.on('close', (c) => ok(c)));
      expect(code).toBe(1006); // terminated, no close frame
      await new Promise((r) => setTimeout(r, 400));
      expect(lively.ws.readyState).toBe(lively.ws.OPEN);
      expect(hb.sessionCount()).toBe(1);
      await lively.close();
    } finally {
      await hb.close();
    }
  });
});

describe('HTTP: media paths, ranges and file jobs', () => {
  const get = (path: string, headers: Record<string, string> = {}) => fetch(server.url + path, { headers });
  const post = (body: unknown) =>
    fetch(server.url + '/api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

  test('path traversal on jobs and media is refused with E_FORBIDDEN', async () => {
    for (const path of ['../secret.mp4', 'sub/../../secret.mp4', join(dir.path, 'secret.mp4'), '/etc/passwd', 'sub/escape.mp4']) {
      const r = await post({ path });
      expect(r.status, path).toBe(403);
      expect(((await r.json()) as { code: string }).code).toBe('E_FORBIDDEN');
    }
    for (const path of [
      '/media/..%2Fsecret.mp4',
      '/media/sub%2F..%2F..%2Fsecret.mp4',
      '/media/sub/escape.mp4',
      `/media/${encodeURIComponent(join(dir.path, 'secret.mp4'))}`,
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(403);
      await r.text();
    }
    const missing = await post({ path: 'nope.mp4' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { code: string }).code).toBe('E_INPUT_NOT_FOUND');
    // Plain ../ in a URL is normalised away by URL parsing; it must still not reach the file.
    const dots = await get('/media/../secret.mp4');
    expect(dots.status).not.toBe(200);
    await dots.text();
  });

  test('GET /media serves byte ranges; a symlink inside the folder is fine', async () => {
    const list = (await (await get('/api/media')).json()) as { files: string[] };
    expect(list.files).toContain('sub/inside.mp4');
    expect(list.files).not.toContain('sub/escape.mp4');
    const name = list.files.find((f) => !f.startsWith('sub/'))!;
    const whole = Buffer.from(await (await get(`/media/${name}`)).arrayBuffer());
    const r = await get(`/media/${name}`, { Range: 'bytes=100-199' });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 100-199/${whole.length}`);
    expect(Buffer.from(await r.arrayBuffer())).toEqual(whole.subarray(100, 200));
    const tail = await get(`/media/${name}`, { Range: 'bytes=-50' });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(whole.subarray(whole.length - 50));
    const bad = await get(`/media/${name}`, { Range: `bytes=${whole.length + 10}-` });
    expect(bad.status).toBe(416);
    await bad.text();
    const viaLink = await get('/media/sub/inside.mp4', { Range: 'bytes=0-9' });
    expect(Buffer.from(await viaLink.arrayBuffer())).toEqual(whole.subarray(0, 10));
  });

  test('a media job streams its labels to a subscriber as they are computed, then offers its files', async () => {
    const c = await client();
    const { files } = (await (await get('/api/media')).json()) as { files: string[] };
    const name = files.find((f) => !f.startsWith('sub/'))!;
    const res = await post({ path: name });
    expect(res.status).toBe(202);
    const { job } = (await res.json()) as { job: { id: string } };
    c.sendJson({ type: 'subscribe', jobId: job.id });
    const done = await c.next<JobMessage>((m) => m.type === 'job' && m.job.status === 'done', 30_000);
    const labels = c.messages.filter((m): m is LabelMessage => m.type === 'label' && m.streamId === `job-${job.id}`);
    expect(done.job.framesDone).toBe(12); // 1.2 s at the bundle's 10 fps
    expect(labels.map((l) => l.index)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    const ref = await reference(framesA);
    labels.forEach((l, i) => l.probs.forEach((p, k) => expect(p).toBeCloseTo(ref[i]![k]!, 4)));
    expect(Object.keys(done.job.files).sort()).toEqual(['csv', 'jsonl', 'segments', 'vtt']);
    const jsonl = await (await get(done.job.files.jsonl!)).text();
    expect(jsonl.trim().split('\n')).toHaveLength(12);
    const vtt = await get(done.job.files.vtt!);
    expect(vtt.headers.get('content-disposition')).toMatch(/attachment/);
    expect(await vtt.text()).toMatch(/^WEBVTT/);
    expect(done.job.segments!.length).toBeGreaterThan(0);
  });

  test('an uploaded video becomes a job whose video is served back with ranges', async () => {
    const clip = await makeClip({ durationSec: 0.6, fps: 10, width: 64, height: 64, dir: dir.path });
    const bytes = readFileSync(clip);
    const r = await fetch(server.url + '/api/jobs?name=my%20clip.mp4', { method: 'POST', body: bytes });
    expect(r.status).toBe(202);
    const { job } = (await r.json()) as { job: { id: string; videoUrl: string } };
    expect(job.videoUrl).toBe(`/api/jobs/${job.id}/video`);
    const c = await client();
    c.sendJson({ type: 'subscribe', jobId: job.id });
    const done = await c.next<JobMessage>((m) => m.type === 'job' && (m.job.status === 'done' || m.job.status === 'failed'), 30_000);
    expect(done.job.status).toBe('done');
    expect(done.job.framesDone).toBe(6);
    const part = await get(job.videoUrl, { Range: 'bytes=0-15' });
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(0, 16));
    const notVideo = await fetch(server.url + '/api/jobs?name=x.mp4', { method: 'POST', body: 'hello' });
    const { job: bad } = (await notVideo.json()) as { job: { id: string } };
    c.sendJson({ type: 'subscribe', jobId: bad.id });
    const failed = await c.next<JobMessage>((m) => m.type === 'job' && m.job.id === bad.id && m.job.status === 'failed', 30_000);
    expect(failed.job.error!.code).toBe('E_DECODE_FAILED');
  });
});
