// `<name>.segments.json`: the ActivityNet detection result format
// ({version, results: {<video id>: [{label, score, segment: [startSec, endSec]}]}, external_data}).
// The whole file is rewritten atomically (temp name + rename): at open (empty, so a stale file
// from an earlier run never passes for this one), at most once a second while segments arrive
// (so a hard kill still leaves recent, closed JSON), and at close. Beside the standard keys it
// says whether the run labeled the whole input (`complete`) and how many frames it labeled
// (`frames`): a run stopped by a signal or an input error is `complete: false`.
import type { Segment } from '../../core/types.ts';
import { DocumentSink } from './document-sink.ts';
import { round3, round6 } from './files.ts';

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

/** `<name>.segments.json`, with the frame count and whether the run was complete. */
export class ActivityNetSink extends DocumentSink {
  constructor(path: string, videoId: string, externalData: ExternalData = DEFAULT_EXTERNAL_DATA) {
    super(
      path,
      (segments, state) =>
        `${JSON.stringify({ ...activityNetResult(videoId, segments, externalData), complete: state.complete, frames: state.frames }, null, 2)}\n`,
    );
  }
}
