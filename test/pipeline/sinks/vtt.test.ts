import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { VttSink, vttTime } from '../../../pipeline/sinks/vtt.ts';
import type { Segment } from '../../../core/types.ts';
import { parseVtt } from '../../helpers/output-shapes.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const seg = (label: string, startMs: number, endMs: number, score: number): Segment => ({ label, startMs, endMs, startFrame: 0, endFrame: 1, score });

test('the parser used as the check does reject malformed WebVTT', () => {
  expect(parseVtt('WEBVTT\n\n00:01.000 -> 00:02.000\nx\n').errors.length).toBeGreaterThan(0);
  expect(parseVtt('WEBVT\n').errors.length).toBeGreaterThan(0);
});

test('cue times are HH:MM:SS.mmm', () => {
  expect(vttTime(0)).toBe('00:00:00.000');
  expect(vttTime(3_723_004.4)).toBe('01:02:03.004');
  expect(vttTime(59_999.6)).toBe('00:01:00.000');
});

test('WebVTT output parses without errors, one cue per segment, valid after every segment', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-vtt-'));
  dirs.push(dir);
  const file = path.join(dir, 'clip.vtt');
  const segs = [seg('walk', 0, 1500, 0.91), seg('a <b> & c --> d', 1500, 3_723_004, 0.5), seg('sit', 3_723_004, 3_723_104.6, 0.333)];
  const sink = new VttSink(file);
  const parse = () => parseVtt(fs.readFileSync(file, 'utf8'));
  expect(parse().errors).toEqual([]);
  for (const [i, s] of segs.entries()) {
    sink.segments([s]);
    const { cues, errors } = parse();
    expect(errors).toEqual([]);
    expect(cues).toHaveLength(i + 1);
  }
  sink.close();
  const { cues } = parse();
  expect(cues.map((c) => [c.startTime, c.endTime])).toEqual([
    [0, 1.5],
    [1.5, 3723.004],
    [3723.004, 3723.105],
  ]);
  expect(cues[0].text).toBe('walk (0.91)');
  expect(cues[1].text).toBe('a &lt;b&gt; &amp; c --&gt; d (0.50)');
  expect(cues.map((c) => c.id)).toEqual(['1', '2', '3']);
});
