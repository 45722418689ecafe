import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { JsonlFileSink, JsonlStreamSink } from '../../../pipeline/sinks/jsonl.ts';
import { randomLabels } from '../../helpers/frame-labels.ts';

const CLASSES = ['walk', 'sit, down', 'say "hi"'];
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-jsonl-'));
  dirs.push(d);
  return d;
};

describe('JSONL sinks', () => {
  test('one parseable line per frame, probs keyed by class, values raw to 6 digits', () => {
    const file = path.join(tmp(), 'clip.frames.jsonl');
    const labels = randomLabels(CLASSES, 57, 3);
    const sink = new JsonlFileSink(file, CLASSES);
    labels.forEach((l) => sink.frame(l));
    sink.close();
    const text = fs.readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(labels.length);
    lines.forEach((row, i) => {
      expect(Object.keys(row)).toEqual(['index', 'timestampMs', 'label', 'score', 'probs']);
      expect(row.index).toBe(i);
      expect(row.timestampMs).toBeCloseTo(labels[i].timestampMs, 3);
      expect(row.label).toBe(labels[i].label);
      expect(Object.keys(row.probs)).toEqual(CLASSES);
      CLASSES.forEach((c, k) => expect(Math.abs(row.probs[c] - labels[i].probs[k])).toBeLessThanOrEqual(5e-7));
    });
  });

  test('lines on disk are whole while writing is in progress', () => {
    const file = path.join(tmp(), 'live.frames.jsonl');
    const sink = new JsonlFileSink(file, CLASSES);
    const labels = randomLabels(CLASSES, 20, 4);
    for (const [i, l] of labels.entries()) {
      sink.frame(l);
      // A reader (tail -f, the viewer) sees exactly the frames written so far.
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.map((x) => JSON.parse(x).index)).toEqual(Array.from({ length: i + 1 }, (_, k) => k));
    }
    sink.close();
  });

  test('stream mode adds the stream id, one write call per line, and waits for drain', async () => {
    const chunks: string[] = [];
    let pending: (() => void) | null = null;
    const slow = new Writable({
      highWaterMark: 64, // forces backpressure after every line
      write(chunk, _enc, cb) {
        chunks.push(String(chunk));
        pending = cb;
      },
    });
    const sink = new JsonlStreamSink(slow, 'cam-1', CLASSES);
    const labels = randomLabels(CLASSES, 3, 5);
    let done = false;
    const p = sink.frame(labels[0]).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false); // blocked on 'drain'
    (pending as unknown as () => void)();
    await p;
    expect(done).toBe(true);
    pending = null;
    const slowDone = sink.frame(labels[1]);
    (pending as unknown as () => void)();
    await slowDone;
    sink.close();
    expect(chunks).toHaveLength(2);
    for (const c of chunks) {
      expect(c.endsWith('\n')).toBe(true);
      expect(JSON.parse(c)).toMatchObject({ streamId: 'cam-1' });
    }
  });

  test('a broken pipe becomes E_OUTPUT_FAILED', async () => {
    const out = new PassThrough();
    const sink = new JsonlStreamSink(out, 'x', CLASSES);
    out.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    await new Promise((r) => setImmediate(r));
    await expect(sink.frame(randomLabels(CLASSES, 1, 1)[0])).rejects.toMatchObject({ code: 'E_OUTPUT_FAILED' });
    sink.close();
  });
});
