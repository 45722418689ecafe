// `train --negatives DIR`: clips of other activities (any folder of videos, searched recursively,
// no layout) join the dataset as one more class, `background`, every frame of them labeled so. The
// head then learns an explicit "none of these" class beside the confidence threshold (`unknown`),
// which a head trained only on its own classes cannot learn from its data alone.
import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { isVideoFile } from '../core/video-files.ts';
import { BACKGROUND, type Dataset, type DatasetVideo } from './dataset.ts';

/** Names of negative clips start with this, so they never collide with the dataset's own clips. */
export const NEGATIVES_PREFIX = 'negatives/';

/** Every video file under `dir` (recursively, sorted, symlinks not followed into loops). */
export async function videosUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && isVideoFile(e.name)) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** The dataset plus the videos under `dir` as clips of class `background` (classes re-sorted). */
export async function withNegatives(ds: Dataset, dir: string): Promise<Dataset> {
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `--negatives: folder not found: ${dir}`);
  const files = await videosUnder(dir);
  if (files.length === 0) throw new FramewiseError(ErrorCodes.DATASET_INVALID, `--negatives: no video files under ${dir}`);
  const negatives: DatasetVideo[] = files.map((path) => ({
    name: NEGATIVES_PREFIX + relative(dir, path).slice(0, -extname(path).length),
    path,
    labels: { kind: 'clip', label: BACKGROUND },
  }));
  const classes = [...new Set([...ds.classes, BACKGROUND])].sort();
  return { ...ds, classes, videos: [...ds.videos, ...negatives] };
}
