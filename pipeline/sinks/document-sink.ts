// A whole-document output (ActivityNet JSON, CVAT XML, Label Studio JSON, ELAN .eaf) rewritten
// atomically (temp name + rename): at open (empty, so a stale file from an earlier run never
// passes for this one), at most once a second while segments arrive (a hard kill still leaves a
// recent, valid file), and at close, when it also learns whether the run was complete.
import type { Segment } from '../../core/types.ts';
import { writeFileAtomic } from './files.ts';
import type { LabelSink } from './sink.ts';

/** Minimum wall time between two rewrites while segments arrive (ms). */
const REWRITE_INTERVAL_MS = 1000;

/** What a document knows besides its segments: frames labeled so far, and whether the run ended whole. */
export interface DocumentState {
  frames: number;
  complete: boolean;
}

export class DocumentSink implements LabelSink {
  private readonly all: Segment[] = [];
  private lastWrite = 0;
  private closed = false;
  private readonly state: DocumentState = { frames: 0, complete: false };

  constructor(
    readonly path: string,
    private readonly render: (segments: readonly Segment[], state: Readonly<DocumentState>) => string,
  ) {
    this.write();
  }

  frame(): void {
    this.state.frames++;
  }

  segments(segments: readonly Segment[]): void {
    if (segments.length === 0) return;
    this.all.push(...segments);
    if (Date.now() - this.lastWrite >= REWRITE_INTERVAL_MS) this.write();
  }

  close(end?: { complete: boolean }): void {
    if (this.closed) return;
    this.closed = true;
    this.state.complete = end?.complete ?? true;
    this.write();
  }

  private write(): void {
    writeFileAtomic(this.path, this.render(this.all, this.state));
    this.lastWrite = Date.now();
  }
}
