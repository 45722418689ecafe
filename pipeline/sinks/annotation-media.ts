// What the annotation-tool writers (CVAT, Label Studio, ELAN) share: the source video they
// annotate, the options of pre-annotations, and the mapping of framewise's segments (times at the
// head's rate) onto the source video's own frames, which is what every tool counts in.
import path from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { Segment } from '../../core/types.ts';
import type { VideoInfo } from '../probe.ts';

/** The label of frames unlike the training data: a gap for the annotator to fill by default. */
export { UNKNOWN_LABEL } from '../../core/types.ts';
import { UNKNOWN_LABEL } from '../../core/types.ts';
/** What gaps read back as (as for ActivityNet datasets); written as a gap too, so it round-trips. */
export const GAP_LABEL = 'background';

/** The source video as the tool sees it. Frame numbers are the source's, at `fps`. */
export interface AnnotationMedia {
  /** Path (or URL) of the video: its basename names it in CVAT and ELAN. */
  path: string;
  /** The source's constant frame rate (frames/s). */
  fps: number;
  /** Source frames, if known (CVAT's task size and stop frame). */
  frameCount?: number;
  width?: number;
  height?: number;
}

export interface AnnotationOptions {
  media?: AnnotationMedia;
  /** Write `unknown` segments as a label instead of a gap. */
  keepUnknown?: boolean;
  /** Label Studio `model_version` (and the author of CVAT/ELAN files). Default 'framewise'. */
  modelVersion?: string;
  /** Label Studio: the TimelineLabels control (`from_name`) and the Video tag (`to_name`). */
  fromName?: string;
  toName?: string;
  /** Label Studio: the task's video URL (`data.<dataKey>`); default the media path. ELAN: MEDIA_URL. */
  videoUrl?: string;
  /** Label Studio: the task data key of the video ($video in `<Video value="$video">`). Default 'video'. */
  dataKey?: string;
}

/** The media description of a probed local file, for `AnnotationOptions.media`. */
export function annotationMedia(file: string, info: VideoInfo): AnnotationMedia {
  const frameCount = info.frameCount ?? (info.durationMs > 0 && info.fps > 0 ? Math.round((info.durationMs / 1000) * info.fps) : undefined);
  return { path: file, fps: info.fps, frameCount, width: info.width, height: info.height };
}

/** A run of source frames [start, end) with one label; `score` is the segment's mean probability. */
export interface FrameInterval {
  label: string;
  start: number;
  end: number;
  score: number;
}

/** The source frame shown at `ms` (frame k is shown from k / fps seconds). */
export function sourceFrameAt(ms: number, fps: number): number {
  return Math.max(0, Math.round((ms / 1000) * fps));
}

/**
 * Segments as runs of source frames: a segment from t0 to t1 covers the source frames shown from
 * t0 up to t1 (boundaries rounded to the nearest source frame, so a head at the source's rate maps
 * frame for frame). `unknown` (unless kept) and `background` runs become gaps; empty runs vanish.
 */
export function segmentsToIntervals(segments: readonly Segment[], fps: number, keepUnknown = false, frameCount?: number): FrameInterval[] {
  const out: FrameInterval[] = [];
  for (const s of segments) {
    if (s.label === GAP_LABEL || (s.label === UNKNOWN_LABEL && !keepUnknown)) continue;
    const start = sourceFrameAt(s.startMs, fps);
    let end = sourceFrameAt(s.endMs, fps);
    if (frameCount !== undefined) end = Math.min(end, frameCount);
    if (end <= start) continue;
    const last = out[out.length - 1];
    if (last && last.label === s.label && last.end === start) last.end = end;
    else out.push({ label: s.label, start, end, score: s.score });
  }
  return out;
}

export function requireMedia(format: string, options: AnnotationOptions): AnnotationMedia {
  const m = options.media;
  if (!m || !(m.fps > 0)) {
    throw new FramewiseError(
      ErrorCodes.USAGE,
      `the ${format} output counts the source video's frames, so it needs a local video file with a known frame rate (not stdin or a stream)`,
    );
  }
  return m;
}

export const mediaName = (m: AnnotationMedia) => path.basename(m.path.replace(/[?#].*$/, ''));
