import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { segmentLabels } from '../../../pipeline/segment.ts';
import { openOutputs, parseFormats } from '../../../pipeline/sinks/index.ts';
import { randomLabels } from '../../helpers/frame-labels.ts';
import { expectActivityNet, parseVtt } from '../../helpers/output-shapes.ts';

const CLASSES = ['walk', 'sit', 'wave'];
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-out-'));
  dirs.push(d);
  return d;
};

/** Reads the four outputs of `<dir>/<name>` and checks each parses. */
function readOutputs(dir: string, name: string) {
  const jsonl = fs.readFileSync(path.join(dir, `${name}.frames.jsonl`), 'utf8');
  expect(jsonl === '' || jsonl.endsWith('\n')).toBe(true);
  const frames = jsonl
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const csvRows = fs
    .readFileSync(path.join(dir, `${name}.csv`), 'utf8')
    .trimEnd()
    .split('\n');
  const vtt = parseVtt(fs.readFileSync(path.join(dir, `${name}.vtt`), 'utf8'));
  expect(vtt.errors).toEqual([]);
  const json = JSON.parse(fs.readFileSync(path.join(dir, `${name}.segments.json`), 'utf8'));
  const anet = expectActivityNet(json, path.basename(name));
  return {
    frames,
    csvRows,
    cues: vtt.cues,
    anet,
    complete: json.complete,
    frameCount: json.frames,
    vttText: fs.readFileSync(path.join(dir, `${name}.vtt`), 'utf8'),
  };
}

describe('openOutputs', () => {
  test('writes all four formats; segments agree across them and with segmentLabels', async () => {
    const dir = tmp();
    const labels = randomLabels(CLASSES, 250, 21);
    const out = openOutputs({ name: 'clip', outDir: dir, classes: CLASSES });
    expect(Object.keys(out.files).sort()).toEqual(['activitynet', 'csv', 'jsonl', 'vtt']);
    for (const l of labels) await out.write(l);
    const segs = await out.close(25_040);
    expect(segs).toEqual(segmentLabels(labels, CLASSES, { endMs: 25_040 }));
    expect(segs.length).toBeGreaterThan(2);

    const { frames, csvRows, cues, anet, complete, frameCount } = readOutputs(dir, 'clip');
    expect([complete, frameCount]).toEqual([true, 250]);
    expect(fs.readdirSync(dir).sort()).toEqual(['clip.csv', 'clip.frames.jsonl', 'clip.segments.json', 'clip.vtt']); // no stage left
    expect(frames.map((f) => f.index)).toEqual(labels.map((l) => l.index));
    expect(csvRows).toHaveLength(labels.length + 1);
    expect(cues.map((c) => [c.startTime, c.endTime])).toEqual(segs.map((s) => [s.startMs / 1000, s.endMs / 1000]));
    expect(anet.map((e) => e.label)).toEqual(segs.map((s) => s.label));
    expect(anet.at(-1)!.segment[1]).toBe(25.04);
  });

  test('files are staged until close; abort mid-way puts every file in place, valid, saying it is partial', async () => {
    const dir = tmp();
    const labels = randomLabels(CLASSES, 200, 22);
    const out = openOutputs({ name: 'sub/clip', outDir: dir, classes: CLASSES });
    for (const l of labels.slice(0, 90)) await out.write(l);
    expect(fs.readdirSync(path.join(dir, 'sub'))).toEqual(['.framewise-tmp']); // nothing under a final name yet
    const segs = await out.abort();
    expect(await out.abort()).toBe(segs); // idempotent

    const { frames, csvRows, cues, anet, complete, frameCount, vttText } = readOutputs(path.join(dir, 'sub'), 'clip');
    expect([complete, frameCount]).toEqual([false, 90]);
    expect(vttText).toMatch(/\nNOTE partial: labeling stopped after 90 frames\n$/);
    expect(fs.readdirSync(path.join(dir, 'sub')).sort()).toEqual(['clip.csv', 'clip.frames.jsonl', 'clip.segments.json', 'clip.vtt']);
    expect(frames).toHaveLength(90);
    expect(csvRows).toHaveLength(91);
    expect(segs).toEqual(segmentLabels(labels.slice(0, 90), CLASSES));
    expect(cues).toHaveLength(segs.length);
    expect(anet).toHaveLength(segs.length);
    expect(anet.at(-1)!.segment[1]).toBeCloseTo(9.0, 6); // last frame at 8.9 s plus one interval
  });

  test('a killed process leaves only staging files (whole JSONL lines, closed JSON); the next run removes them and says so', async () => {
    const dir = tmp();
    const script = path.join(dir, 'writer.mts');
    const repo = fileURLToPath(new URL('../../../', import.meta.url));
    fs.writeFileSync(
      script,
      `import { openOutputs } from ${JSON.stringify(path.join(repo, 'pipeline/sinks/index.ts'))};
       import { randomLabels } from ${JSON.stringify(path.join(repo, 'test/helpers/frame-labels.ts'))};
       const out = openOutputs({ name: 'clip', outDir: ${JSON.stringify(dir)}, classes: ['walk', 'sit', 'wave'] });
       let i = 0;
       for (const l of randomLabels(['walk', 'sit', 'wave'], 100000, 5)) { await out.write(l); if (++i === 50) console.log('ready'); await new Promise((r) => setTimeout(r, 1)); }`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Nothing under a final name: a killed run never passes for a finished one.
    expect(fs.readdirSync(dir).sort()).toEqual(['.framewise-tmp', 'writer.mts']);
    const stages = fs.readdirSync(path.join(dir, '.framewise-tmp'));
    expect(stages).toHaveLength(1);
    expect(stages[0]).toContain(`.${child.pid}.`);
    const stage = path.join(dir, '.framewise-tmp', stages[0]!);
    const { frames, anet, complete } = readOutputs(stage, 'clip');
    expect(frames.length).toBeGreaterThanOrEqual(50);
    expect(frames.map((f) => f.index)).toEqual(frames.map((_, i) => i));
    expect(Array.isArray(anet)).toBe(true);
    expect(complete).toBe(false);

    const notices: string[] = [];
    const next = openOutputs({ name: 'clip', outDir: dir, classes: CLASSES, onNotice: (m) => notices.push(m) });
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/removed 4 staging file\(s\) of an earlier run that was killed.*clip\.frames\.jsonl/);
    expect(fs.existsSync(stage)).toBe(false);
    await next.close();
    expect(fs.readdirSync(dir).sort()).toEqual(['clip.csv', 'clip.frames.jsonl', 'clip.segments.json', 'clip.vtt', 'writer.mts']);
  });

  test("a live run's stage is left alone by another run in the same folder", async () => {
    const dir = tmp();
    const a = openOutputs({ name: 'a', outDir: dir, classes: CLASSES });
    const notices: string[] = [];
    const b = openOutputs({ name: 'b', outDir: dir, classes: CLASSES, onNotice: (m) => notices.push(m) });
    expect(fs.readdirSync(path.join(dir, '.framewise-tmp'))).toHaveLength(2);
    for (const l of randomLabels(CLASSES, 10, 3)) await a.write(l);
    await b.close();
    await a.close();
    expect(notices).toEqual([]);
    expect(readOutputs(dir, 'a').frames).toHaveLength(10);
    expect(fs.readdirSync(dir).sort()).toEqual(['a.csv', 'a.frames.jsonl', 'a.segments.json', 'a.vtt', 'b.csv', 'b.frames.jsonl', 'b.segments.json', 'b.vtt']);
  });

  test('an unwritable output folder gives E_OUTPUT_FAILED naming the path', () => {
    const dir = tmp();
    const file = path.join(dir, 'not-a-folder');
    fs.writeFileSync(file, '');
    const bad = path.join(file, 'out');
    expect(() => openOutputs({ name: 'clip', outDir: bad, classes: CLASSES })).toThrow(
      expect.objectContaining({ code: 'E_OUTPUT_FAILED', message: expect.stringContaining(bad) }),
    );
  });

  test.skipIf(process.getuid?.() === 0)('a read-only folder gives E_OUTPUT_FAILED (skipped as root: root writes anyway)', () => {
    const dir = tmp();
    fs.chmodSync(dir, 0o500);
    try {
      expect(() => openOutputs({ name: 'clip', outDir: dir, classes: CLASSES })).toThrow(expect.objectContaining({ code: 'E_OUTPUT_FAILED' }));
    } finally {
      fs.chmodSync(dir, 0o700);
    }
  });

  test('--formats picks the files; "-" streams JSONL lines with the stream name and writes no file', async () => {
    const dir = tmp();
    const labels = randomLabels(CLASSES, 30, 23);
    const out = openOutputs({ name: 'clip', outDir: dir, classes: CLASSES, formats: parseFormats('vtt,jsonl') });
    for (const l of labels) await out.write(l);
    await out.close();
    expect(fs.readdirSync(dir).sort()).toEqual(['clip.frames.jsonl', 'clip.vtt']);
    expect(fs.readFileSync(path.join(dir, 'clip.vtt'), 'utf8')).not.toMatch(/NOTE/); // a complete run has no partial note

    const pipe = new PassThrough();
    const text: string[] = [];
    pipe.on('data', (d) => text.push(String(d)));
    const live = openOutputs({ name: 'clip.mp4', outDir: '-', classes: CLASSES, stdout: pipe });
    for (const l of labels) await live.write(l);
    const segs = await live.close();
    expect(segs.length).toBeGreaterThan(0);
    const lines = text
      .join('')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(labels.length);
    expect(lines.every((l) => l.streamId === 'clip.mp4' && Object.keys(l.probs).join() === CLASSES.join())).toBe(true);
    expect(pipe.writableEnded).toBe(false); // shared by other inputs: not ended
  });
});

describe('parseFormats', () => {
  test('defaults to all, keeps canonical order, ignores case/spaces/duplicates, rejects unknown names', () => {
    expect(parseFormats()).toEqual(['jsonl', 'csv', 'vtt', 'activitynet']);
    expect(parseFormats('')).toEqual(['jsonl', 'csv', 'vtt', 'activitynet']);
    expect(parseFormats(' VTT, jsonl ,vtt')).toEqual(['jsonl', 'vtt']);
    expect(parseFormats('all')).toHaveLength(4);
    expect(() => parseFormats('jsonl,srt')).toThrow(expect.objectContaining({ code: 'E_USAGE', message: expect.stringContaining("'srt'") }));
    expect(() => parseFormats(',')).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });
});
