import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { ACTIVITYNET_VERSION, ActivityNetSink } from '../../../pipeline/sinks/activitynet.ts';
import type { Segment } from '../../../core/types.ts';
import { expectActivityNet } from '../../helpers/output-shapes.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test('segments.json is ActivityNet-shaped, in seconds, closed JSON from open to close, no temp files left', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-anet-'));
  dirs.push(dir);
  const file = path.join(dir, 'clip.segments.json');
  fs.writeFileSync(file, '{"stale": true}');
  const sink = new ActivityNetSink(file, 'clip');
  // Valid (and empty) right after open: a stale file from an earlier run is replaced.
  expect(expectActivityNet(JSON.parse(fs.readFileSync(file, 'utf8')), 'clip')).toEqual([]);
  const segs: Segment[] = [
    { label: 'walk', startMs: 0, endMs: 1500, startFrame: 0, endFrame: 15, score: 0.9123456789 },
    { label: 'sit', startMs: 1500, endMs: 2250.5, startFrame: 15, endFrame: 23, score: 0.5 },
  ];
  sink.segments(segs);
  sink.close();
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  expect(json.version).toBe(ACTIVITYNET_VERSION);
  expect(expectActivityNet(json, 'clip')).toEqual([
    { label: 'walk', score: 0.912346, segment: [0, 1.5] },
    { label: 'sit', score: 0.5, segment: [1.5, 2.251] },
  ]);
  expect(fs.readdirSync(dir)).toEqual(['clip.segments.json']);
});
