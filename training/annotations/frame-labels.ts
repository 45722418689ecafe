// Interval labels from an annotation tool turned into one label per source frame, the form the
// per-frame layout (videos/ + labels/) has, so a dataset trains the same whichever tool made it.
// Frames outside every interval are `background`; two different labels on one frame are an error
// that names both places in the file (never a silent choice of one).
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { GAP_LABEL } from '../../pipeline/sinks/annotation-media.ts';

/** Source frames [start, end); `end` undefined = to the last frame. `where` locates it in its file. */
export interface FrameRun {
  label: string;
  start: number;
  end?: number;
  where: string;
}

/** The source video an annotation file points at, as probed. */
export interface SourceVideo {
  path: string;
  fps: number;
  frameCount: number;
}

const MAX_REPORTED = 5;

/** `firstFrame`: the number the tool gives the first frame (Label Studio counts from 1), so that
 * messages speak in the tool's numbers. */
export function runsToFrameLabels(runs: readonly FrameRun[], video: SourceVideo, file: string, firstFrame = 0): string[] {
  const labels = new Array<string | undefined>(video.frameCount).fill(undefined);
  const owner = new Array<number>(video.frameCount).fill(-1);
  const problems: string[] = [];
  runs.forEach((r, i) => {
    const end = r.end ?? video.frameCount;
    if (end > video.frameCount) {
      problems.push(
        `${r.where} ends at frame ${end - 1 + firstFrame} but the video has ${video.frameCount} frames (${video.fps} fps): a different video, frame rate or frame numbering`,
      );
      return;
    }
    for (let f = Math.max(0, r.start); f < end; f++) {
      const j = owner[f]!;
      if (j >= 0 && runs[j]!.label !== r.label) {
        problems.push(`${r.where} "${r.label}" overlaps ${runs[j]!.where} "${runs[j]!.label}" from frame ${f + firstFrame}`);
        return;
      }
      owner[f] = i;
      labels[f] = r.label;
    }
  });
  if (problems.length > 0) {
    const more = problems.length > MAX_REPORTED ? ` (and ${problems.length - MAX_REPORTED} more)` : '';
    throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: ${problems.slice(0, MAX_REPORTED).join('; ')}${more}`);
  }
  return labels.map((l) => l ?? GAP_LABEL);
}

/**
 * Millisecond intervals (ELAN) as frame runs: frame k (shown from k / fps to (k + 1) / fps s) is
 * in [startMs, endMs) when its middle is, so integer-millisecond rounding never moves a boundary.
 */
export function msToFrameRuns(intervals: readonly { label: string; startMs: number; endMs: number; where: string }[], fps: number): FrameRun[] {
  const first = (ms: number) => Math.max(0, Math.ceil((ms / 1000) * fps - 0.5));
  return intervals.map((iv) => ({ label: iv.label, start: first(iv.startMs), end: first(iv.endMs), where: iv.where })).filter((r) => r.end > r.start);
}
