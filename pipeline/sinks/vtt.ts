// `<name>.vtt`: WebVTT, one cue per segment, text "label (score)". Cues are appended as segments
// become final, each block in one write, so the file is valid WebVTT at every moment.
import type { Segment } from '../../core/types.ts';
import { ChunkFile } from './files.ts';
import type { LabelSink } from './sink.ts';

/** HH:MM:SS.mmm (hours never omitted, so every player and parser accepts it). */
export function vttTime(ms: number): string {
  const total = Math.max(0, Math.round(ms));
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor(total / 60_000) % 60;
  const s = Math.floor(total / 1000) % 60;
  const milli = total % 1000;
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${pad(milli, 3)}`;
}

/** Cue text must not hold markup, line breaks (a blank line ends the cue) or "-->". */
export function vttText(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\r\n]+/g, ' ');
}

export function vttCue(id: number, seg: Segment): string {
  // Rounded to whole ms, a very short segment could collapse; keep end after start.
  const start = Math.round(seg.startMs);
  const end = Math.max(Math.round(seg.endMs), start + 1);
  return `\n${id}\n${vttTime(start)} --> ${vttTime(end)}\n${vttText(`${seg.label} (${seg.score.toFixed(2)})`)}\n`;
}

export class VttSink implements LabelSink {
  private readonly file: ChunkFile;
  private cues = 0;
  private frames = 0;
  private closed = false;

  constructor(readonly path: string) {
    this.file = ChunkFile.open(path);
    this.file.write('WEBVTT\n');
  }

  frame(): void {
    this.frames++;
  }

  segments(segments: readonly Segment[]): void {
    for (const seg of segments) this.file.write(vttCue(++this.cues, seg));
  }

  close(end?: { complete: boolean }): void {
    if (this.closed) return;
    this.closed = true;
    // A NOTE block (ignored by players) tells a reader of the subtitles alone that they stop early.
    if (end && !end.complete) this.file.write(`\nNOTE partial: labeling stopped after ${this.frames} frames\n`);
    this.file.close();
  }
}
