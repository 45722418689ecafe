// `<name>.segments.json`: the ActivityNet detection result format
// ({version, results: {<video id>: [{label, score, segment: [startSec, endSec]}]}, external_data}).
// The whole file is rewritten atomically (temp name + rename): at open (empty, so a stale file
// from an earlier run never passes for this one), at most once a second while segments arrive
// (so a hard kill still leaves recent, closed JSON), and at close. Beside the standard keys it
// says whether the run labeled the whole input (`complete`) and how many frames it labeled
// (`frames`): a run stopped by a signal or an input error is `complete: false`.
import type { Segment } from '../../core/types.ts';
import { round3, round6, writeFileAtomic } from './files.ts';
import type { LabelSink } from './sink.ts';

export const ACTIVITYNET_VERSION = 'VERSION 1.3';

export interface ExternalData {
  used: boolean;
  details: string;
}

/** The embedder is ImageNet-pretrained, so by the challenge's rules external data is used. */
export const DEFAULT_EXTERNAL_DATA: ExternalData = Object.freeze({
  used: true,
  details: 'Frame embeddings from an ImageNet-pretrained MobileNet (framewise).',
});

export interface ActivityNetEntry {
  label: string;
  score: number;
  segment: [number, number];
}

export interface ActivityNetResult {
  version: string;
  results: Record<string, ActivityNetEntry[]>;
  external_data: ExternalData;
}

export function activityNetEntry(seg: Segment): ActivityNetEntry {
  return { label: seg.label, score: round6(seg.score), segment: [round3(seg.startMs / 1000), round3(seg.endMs / 1000)] };
}

export function activityNetResult(videoId: string, segments: readonly Segment[], externalData: ExternalData = DEFAULT_EXTERNAL_DATA): ActivityNetResult {
  return {
    version: ACTIVITYNET_VERSION,
    results: { [videoId]: segments.map(activityNetEntry) },
    external_data: { used: externalData.used, details: externalData.details },
  };
}

/** Minimum wall time between two rewrites while segments arrive (ms). */
const REWRITE_INTERVAL_MS = 1000;

export class ActivityNetSink implements LabelSink {
  private readonly entries: Segment[] = [];
  private lastWrite = 0;
  private dirty = false;
  private closed = false;
  private frames = 0;
  private complete = false;

  constructor(
    readonly path: string,
    private readonly videoId: string,
    private readonly externalData: ExternalData = DEFAULT_EXTERNAL_DATA,
  ) {
    this.write();
  }

  frame(): void {
    this.frames++;
  }

  segments(segments: readonly Segment[]): void {
    if (segments.length === 0) return;
    this.entries.push(...segments);
    this.dirty = true;
    if (Date.now() - this.lastWrite >= REWRITE_INTERVAL_MS) this.write();
  }

  close(end?: { complete: boolean }): void {
    if (this.closed) return;
    this.closed = true;
    this.complete = end?.complete ?? true;
    this.write();
  }

  private write(): void {
    const result = { ...activityNetResult(this.videoId, this.entries, this.externalData), complete: this.complete, frames: this.frames };
    writeFileAtomic(this.path, `${JSON.stringify(result, null, 2)}\n`);
    this.lastWrite = Date.now();
    this.dirty = false;
  }
}
