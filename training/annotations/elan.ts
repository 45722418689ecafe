// ELAN .eaf files as a dataset: `<root>/*.eaf`, one media file each, found through the header's
// RELATIVE_MEDIA_URL (from the .eaf's folder), its MEDIA_URL, the media's file name in <root> or
// <root>/videos, or a video named like the .eaf. One tier is read: --tier, default the first
// tier with time-aligned annotations.
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { isVideoFile } from '../../core/video-files.ts';
import { parseEaf } from '../../pipeline/sinks/elan.ts';
import type { AnnotatedVideo, AnnotationFiles } from './annotated-video.ts';
import { msToFrameRuns, runsToFrameLabels } from './frame-labels.ts';
import type { SourceVideos } from './source-videos.ts';

const isFile = (p: string) =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  );

async function mediaOf(doc: ReturnType<typeof parseEaf>, eafPath: string, videos: SourceVideos): Promise<string | undefined> {
  for (const m of doc.media) {
    if (m.relative) {
      let rel = m.relative.replace(/^file:(\/\/)?/, '');
      try {
        rel = decodeURIComponent(rel);
      } catch {
        // Not URL-encoded after all: use it as written.
      }
      const p = resolve(dirname(eafPath), rel);
      if (isVideoFile(p) && (await isFile(p))) return p;
    }
    if (m.url?.startsWith('file:')) {
      try {
        const p = fileURLToPath(m.url);
        if (isVideoFile(p) && (await isFile(p))) return p;
      } catch {
        // A Windows drive path on another system: fall back to the file name below.
      }
    }
  }
  for (const m of doc.media) {
    const hit = (m.relative && videos.find(m.relative)) || (m.url && videos.find(m.url));
    if (hit) return hit;
  }
  return videos.findStem(basename(eafPath, extname(eafPath)));
}

export async function loadElan(found: AnnotationFiles, videos: SourceVideos, tier?: string): Promise<AnnotatedVideo[]> {
  const out: AnnotatedVideo[] = [];
  for (const file of found.files) {
    const eafPath = join(found.root, file);
    const doc = parseEaf(await readFile(eafPath, 'utf8'), file, tier);
    const path = await mediaOf(doc, eafPath, videos);
    if (!path) {
      const named =
        doc.media
          .map((m) => m.relative ?? m.url)
          .filter(Boolean)
          .join(', ') || 'none';
      throw new FramewiseError(
        ErrorCodes.DATASET_INVALID,
        `${file}: its media (${named}) is not found, and no video named ${basename(file, '.eaf')}.<ext> is in ${videos.describe()}`,
      );
    }
    const info = await videos.info(path);
    out.push({ name: basename(path, extname(path)), path, labels: runsToFrameLabels(msToFrameRuns(doc.intervals, info.fps), info, file) });
  }
  return out;
}
