// Which annotation tool made the files in a dataset root, and its reader. Detected from the files
// (.eaf: ELAN; .xml with an <annotations> root or .zip: CVAT; .json holding an array of tasks:
// Label Studio) or named with --layout; two kinds in one root is an error rather than a guess.
import { open, readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { AnnotatedVideo } from './annotated-video.ts';
import { loadCvat } from './cvat.ts';
import { loadElan } from './elan.ts';
import { loadLabelStudio, type LabelStudioOptions } from './label-studio.ts';
import { SourceVideos } from './source-videos.ts';

export const ANNOTATION_LAYOUTS = ['cvat', 'labelstudio', 'elan'] as const;
export type AnnotationLayout = (typeof ANNOTATION_LAYOUTS)[number];

export interface AnnotationReadOptions {
  /** ELAN: the tier to read (default: the first with time-aligned annotations). */
  tier?: string;
  /** Label Studio: the labeling config file and/or the timeline's frame rate. */
  labelStudio?: LabelStudioOptions;
}

async function head(path: string, bytes = 4096): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(buf, 0, bytes, 0);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** The annotation files of each kind in `root` (top level only). */
export async function findAnnotationFiles(root: string): Promise<Record<AnnotationLayout, string[]>> {
  const found: Record<AnnotationLayout, string[]> = { cvat: [], labelstudio: [], elan: [] };
  const entries = (await readdir(root, { withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  for (const f of entries) {
    const ext = extname(f).toLowerCase();
    if (ext === '.eaf') found.elan.push(f);
    else if (ext === '.zip') found.cvat.push(f);
    else if (ext === '.xml' && /<annotations[\s>]/.test(await head(join(root, f)))) found.cvat.push(f);
    // An array at the top: Label Studio's export (ActivityNet's annotations.json is an object).
    else if (ext === '.json' && /^\uFEFF?\s*\[/.test(await head(join(root, f), 256))) found.labelstudio.push(f);
  }
  return found;
}

/** The layout the files say, or undefined when the root holds no annotation-tool files. */
export async function detectAnnotationLayout(root: string): Promise<AnnotationLayout | undefined> {
  const found = await findAnnotationFiles(root);
  const kinds = ANNOTATION_LAYOUTS.filter((k) => found[k].length > 0);
  if (kinds.length > 1) {
    const list = kinds.map((k) => `${k} (${found[k].slice(0, 3).join(', ')}${found[k].length > 3 ? ', ...' : ''})`).join('; ');
    throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${root} holds files of several annotation tools: ${list}; name one with --layout`);
  }
  return kinds[0];
}

export async function loadAnnotatedVideos(root: string, layout: AnnotationLayout, o: AnnotationReadOptions = {}): Promise<AnnotatedVideo[]> {
  const files = (await findAnnotationFiles(root))[layout];
  if (files.length === 0) {
    const what = { cvat: 'CVAT XML (.xml) or export archive (.zip)', labelstudio: 'Label Studio JSON export (.json)', elan: 'ELAN file (.eaf)' }[layout];
    throw new FramewiseError(ErrorCodes.DATASET_INVALID, `--layout ${layout}: no ${what} in ${root}`);
  }
  const videos = await SourceVideos.scan(root);
  const found = { root, files };
  const list =
    layout === 'cvat'
      ? await loadCvat(found, videos)
      : layout === 'elan'
        ? await loadElan(found, videos, o.tier)
        : await loadLabelStudio(found, videos, o.labelStudio ?? {});
  const byName = new Map<string, AnnotatedVideo>();
  for (const v of list) {
    const other = byName.get(v.name);
    if (other)
      throw new FramewiseError(
        ErrorCodes.DATASET_INVALID,
        `two annotation files label videos named "${v.name}" (${basename(other.path)}, ${basename(v.path)}): one file per video`,
      );
    byName.set(v.name, v);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}
