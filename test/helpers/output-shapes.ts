// Shape checks for the output files, shared by the sink tests and the end-to-end label tests.
import { createRequire } from 'node:module';
import { expect } from 'vitest';

export interface ActivityNetEntryShape {
  label: string;
  score: number;
  segment: [number, number];
}

/** The ActivityNet detection result shape, checked field by field. */
export function expectActivityNet(json: unknown, videoId: string): ActivityNetEntryShape[] {
  expect(json).toMatchObject({ version: expect.any(String), results: expect.any(Object), external_data: expect.any(Object) });
  const j = json as { results: Record<string, unknown[]>; external_data: { used: unknown; details: unknown } };
  expect(typeof j.external_data.used).toBe('boolean');
  expect(typeof j.external_data.details).toBe('string');
  expect(Object.keys(j.results)).toEqual([videoId]);
  const list = j.results[videoId] as ActivityNetEntryShape[];
  for (const e of list) {
    expect(Object.keys(e).sort()).toEqual(['label', 'score', 'segment']);
    expect(typeof e.label).toBe('string');
    expect(e.score).toBeGreaterThanOrEqual(0);
    expect(e.score).toBeLessThanOrEqual(1);
    expect(e.segment).toHaveLength(2);
    expect(e.segment[1]).toBeGreaterThan(e.segment[0]);
  }
  return list;
}

export interface VttCue {
  id: string;
  startTime: number;
  endTime: number;
  text: string;
}

// webvtt-parser is the W3C's WebVTT parser and validator (CommonJS, no types): it reports every
// syntax error with its line, which is stricter than a regex of ours.
const { WebVTTParser } = createRequire(import.meta.url)('webvtt-parser') as {
  WebVTTParser: new () => { parse(input: string, mode?: string): { cues: VttCue[]; errors: { message: string; line: number }[] } };
};

/** Parses WebVTT text strictly (metadata mode: cue text is kept as written). */
export function parseVtt(text: string): { cues: VttCue[]; errors: { message: string; line: number }[] } {
  return new WebVTTParser().parse(text, 'metadata');
}
