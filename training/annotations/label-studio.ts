// Label Studio JSON exports as a dataset: `<root>/*.json` (the export of a video project with
// <TimelineLabels>), tasks with an annotation only (the rest are still to be labeled). The export
// does not carry the frame rate its frame numbers count in: it comes from --ls-fps or from the
// <Video frameRate> of the labeling config given with --ls-config, and must be the video's.
import { readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { parseLabelStudioConfig, parseLabelStudioExport } from '../../pipeline/sinks/label-studio.ts';
import type { AnnotatedVideo, AnnotationFiles } from './annotated-video.ts';
import { runsToFrameLabels } from './frame-labels.ts';
import type { SourceVideos } from './source-videos.ts';

export interface LabelStudioOptions {
  /** The labeling config (XML) of the project: frame rate, and which data key is the video. */
  config?: string;
  /** Frames per second of the project's timeline; wins over the config's. */
  fps?: number;
}

/** Relative difference below which two frame rates are the same (29.97 vs 30000/1001). */
const FPS_TOLERANCE = 1e-3;

export async function loadLabelStudio(found: AnnotationFiles, videos: SourceVideos, o: LabelStudioOptions): Promise<AnnotatedVideo[]> {
  const config = o.config ? parseLabelStudioConfig(await readFile(o.config, 'utf8'), o.config) : undefined;
  const fps = o.fps ?? config?.frameRate;
  const from = o.fps !== undefined ? `--ls-fps ${o.fps}` : `<Video frameRate="${fps}"> in ${o.config}`;
  const out: AnnotatedVideo[] = [];
  const seen = new Map<string, string>();
  for (const file of found.files) {
    const tasks = parseLabelStudioExport(await readFile(join(found.root, file), 'utf8'), file, { dataKey: config?.dataKey });
    for (const task of tasks.filter((t) => t.annotated)) {
      const ref = task.video ?? task.fileUpload;
      const path = (ref && videos.find(ref)) || (task.fileUpload && videos.find(task.fileUpload)) || undefined;
      if (!path)
        throw new FramewiseError(
          ErrorCodes.DATASET_INVALID,
          `${file}: task ${task.id}: its video (${ref ?? 'no video in the task data'}) is not in ${videos.describe()}`,
        );
      if (fps === undefined) {
        throw new FramewiseError(
          ErrorCodes.USAGE,
          `${file}: Label Studio exports do not say at which frame rate their frame numbers count: pass --ls-fps N or the project's labeling config with --ls-config FILE`,
        );
      }
      const info = await videos.info(path);
      if (Math.abs(fps - info.fps) > FPS_TOLERANCE * info.fps) {
        throw new FramewiseError(
          ErrorCodes.DATASET_INVALID,
          `${file}: task ${task.id}: frames count at ${fps} fps (${from}) but ${basename(path)} is ${+info.fps.toFixed(3)} fps: set the <Video frameRate> of the project to the video's rate`,
        );
      }
      const where = `${file} task ${task.id}`;
      const before = seen.get(path);
      if (before) throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${where} and ${before} label the same video ${basename(path)}`);
      seen.set(path, where);
      out.push({ name: basename(path, extname(path)), path, labels: runsToFrameLabels(task.intervals, info, file, 1) });
    }
  }
  return out;
}
