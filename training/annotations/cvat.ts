// CVAT for video 1.1 exports as a dataset: `<root>/*.xml` (a task's annotations.xml, any name) or
// `<root>/*.zip` (the export archive, annotations.xml inside), one video task each. The video is
// meta/task/source, else the file's own name, looked up in <root> or <root>/videos. Frame numbers
// are the source video's (start_frame and the frame step honoured by the parser).
import { readFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { unzipSync } from 'fflate';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { parseCvatXml } from '../../pipeline/sinks/cvat.ts';
import type { AnnotatedVideo, AnnotationFiles } from './annotated-video.ts';
import { runsToFrameLabels } from './frame-labels.ts';
import type { SourceVideos } from './source-videos.ts';

const invalid = (msg: string, cause?: unknown) => new FramewiseError(ErrorCodes.DATASET_INVALID, msg, { cause });

/** The annotations.xml of a CVAT export archive (other entries, such as frame images, are skipped unread). */
export function cvatXmlFromZip(zip: Uint8Array, file: string): string {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(zip, { filter: (f) => f.name === 'annotations.xml' || f.name.endsWith('/annotations.xml') });
  } catch (err) {
    throw invalid(`${file}: not a readable zip archive (${(err as Error).message})`, err);
  }
  const names = Object.keys(entries);
  if (names.length === 0) throw invalid(`${file}: no annotations.xml inside (export the task as "CVAT for video 1.1")`);
  if (names.length > 1) throw invalid(`${file}: ${names.length} annotations.xml files inside (${names.join(', ')}); export one task per archive`);
  return new TextDecoder().decode(entries[names[0]!]);
}

export async function readCvatFile(root: string, file: string): Promise<string> {
  const buf = await readFile(join(root, file));
  return extname(file).toLowerCase() === '.zip' ? cvatXmlFromZip(buf, file) : buf.toString('utf8');
}

export async function loadCvat(found: AnnotationFiles, videos: SourceVideos): Promise<AnnotatedVideo[]> {
  const out: AnnotatedVideo[] = [];
  for (const file of found.files) {
    const task = parseCvatXml(await readCvatFile(found.root, file), file);
    const path = task.source ? videos.find(task.source) : videos.findStem(basename(file, extname(file)));
    if (!path) {
      throw invalid(
        task.source
          ? `${file}: meta/task/source names "${task.source}" but no such video is in ${videos.describe()}`
          : `${file}: no meta/task/source and no video named ${basename(file, extname(file))}.<ext> in ${videos.describe()}`,
      );
    }
    const info = await videos.info(path);
    if (task.stopFrame !== undefined && task.stopFrame >= info.frameCount) {
      throw invalid(
        `${file}: the task's stop_frame is ${task.stopFrame} but ${basename(path)} has ${info.frameCount} frames (frames 0-${info.frameCount - 1}): a different video or a re-encoded one`,
      );
    }
    out.push({ name: basename(path, extname(path)), path, labels: runsToFrameLabels(task.intervals, info, file) });
  }
  return out;
}
