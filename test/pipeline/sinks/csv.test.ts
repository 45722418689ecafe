import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { CsvSink } from '../../../pipeline/sinks/csv.ts';
import { randomLabels } from '../../helpers/frame-labels.ts';

const CLASSES = ['walk', 'sit, down', 'say "hi"', ' padded'];
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** RFC 4180 reader, independent of the writer's code. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') ((field += '"'), i++);
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') (row.push(field), (field = ''));
    else if (ch === '\n') (row.push(field), rows.push(row), (row = []), (field = ''));
    else if (ch !== '\r') field += ch;
  }
  if (field !== '' || row.length > 0) throw new Error('last line has no line end');
  return rows;
}

test('CSV has the header, one row per frame, escaped class names, and values that read back', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-csv-'));
  dirs.push(dir);
  const file = path.join(dir, 'clip.csv');
  const labels = randomLabels(CLASSES, 40, 9).map((l, i) => (i === 3 ? { ...l, label: 'sit, down' } : l));
  const sink = new CsvSink(file, CLASSES);
  labels.forEach((l) => sink.frame(l));
  sink.close();

  const [header, ...rows] = parseCsv(fs.readFileSync(file, 'utf8'));
  expect(header).toEqual(['index', 'timestamp_ms', 'label', 'score', ...CLASSES]);
  expect(rows).toHaveLength(labels.length);
  rows.forEach((r, i) => {
    expect(r).toHaveLength(header.length);
    expect(Number(r[0])).toBe(i);
    expect(Number(r[1])).toBeCloseTo(labels[i].timestampMs, 3);
    expect(r[2]).toBe(labels[i].label);
    expect(Number(r[3])).toBeCloseTo(labels[i].score, 5);
    CLASSES.forEach((_, k) => expect(Number(r[4 + k])).toBeCloseTo(labels[i].probs[k], 5));
  });
});
