// `<name>.csv`: one row per labeled frame, RFC 4180 quoting, LF line ends (what pandas, Python's
// csv module and spreadsheets all read), a column of raw probability per class.
import type { FrameLabel } from '../../core/types.ts';
import { ChunkFile, round3, round6 } from './files.ts';
import type { LabelSink } from './sink.ts';

/** Quotes a field when it holds a comma, quote, line break or edge space; doubles inner quotes. */
export function csvField(value: string | number): string {
  const s = String(value);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvRow(fields: readonly (string | number)[]): string {
  return `${fields.map(csvField).join(',')}\n`;
}

export class CsvSink implements LabelSink {
  private readonly file: ChunkFile;

  constructor(
    readonly path: string,
    private readonly classes: readonly string[],
  ) {
    this.file = ChunkFile.open(path);
    this.file.write(csvRow(['index', 'timestamp_ms', 'label', 'score', ...classes]));
  }

  frame(label: FrameLabel): void {
    this.file.write(this.row(label));
  }

  /** One write(2) for all the rows: the file still only ever ends on a whole row. */
  frameBatch(labels: readonly FrameLabel[]): void {
    let text = '';
    for (const l of labels) text += this.row(l);
    if (text) this.file.write(text);
  }

  private row(label: FrameLabel): string {
    const row: (string | number)[] = [label.index, round3(label.timestampMs), label.label, round6(label.score)];
    for (let c = 0; c < this.classes.length; c++) row.push(round6(label.probs[c]));
    return csvRow(row);
  }

  segments(): void {}

  close(): void {
    this.file.close();
  }
}
