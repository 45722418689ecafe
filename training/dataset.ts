// Labeled video datasets for `train` and `eval`, in three layouts:
//   folders:  <root>/<label>/<clip>.<ext>                 one label per clip
//   frames:   <root>/videos/<name>.<ext> + <root>/labels/<name>.txt, one label per source frame
//   segments: <root>/annotations.json (ActivityNet), frames outside every segment are 'background'
// and the annotation tools' exports (CVAT, Label Studio, ELAN: training/annotations/), read into
// per-frame labels.
// Labels are kept in the source's own terms (clip, source frame, seconds) and mapped onto the
// frames actually decoded (at the bundle's fps) by `labelsAtTimes`, so one dataset serves any fps.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { seededRandom } from '../core/seeded-random.ts';
import { isVideoFile } from '../core/video-files.ts';
import {
  ANNOTATION_LAYOUTS,
  detectAnnotationLayout,
  loadAnnotatedVideos,
  type AnnotationLayout,
  type AnnotationReadOptions,
} from './annotations/annotation-layout.ts';

export const BACKGROUND = 'background';

export type ClipLabels =
  | { kind: 'clip'; label: string }
  | { kind: 'frames'; labels: string[] }
  | { kind: 'segments'; segments: { label: string; startSec: number; endSec: number }[] };

export interface DatasetVideo {
  /** Path relative to the dataset root, without extension: stable across machines, used by --group-by. */
  name: string;
  path: string;
  labels: ClipLabels;
}

export interface Dataset {
  root: string;
  layout: DatasetLayout;
  /** Sorted class labels; the index is the class id. */
  classes: string[];
  videos: DatasetVideo[];
}

export const DATASET_LAYOUTS = ['folders', 'frames', 'segments', ...ANNOTATION_LAYOUTS] as const;
export type DatasetLayout = (typeof DATASET_LAYOUTS)[number];

export interface DatasetOptions extends AnnotationReadOptions {
  /** The layout, when the files should not decide (default: detected). */
  layout?: DatasetLayout;
  /** Training: a folder of clips of other activities, added as class `background` (training/negatives.ts). */
  negatives?: string;
}

const invalid = (msg: string, cause?: unknown) => new FramewiseError(ErrorCodes.DATASET_INVALID, msg, { cause });

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function loadDataset(root: string, options: DatasetOptions = {}): Promise<Dataset> {
  if (!(await exists(root))) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `dataset folder not found: ${root}`);
  const layout = options.layout ?? (await detectAnnotationLayout(root));
  let ds: Dataset;
  if (layout && (ANNOTATION_LAYOUTS as readonly string[]).includes(layout)) ds = await loadAnnotations(root, layout as AnnotationLayout, options);
  else if (layout === 'segments') ds = await loadSegments(root);
  else if (layout === 'frames') ds = await loadFrameLabels(root);
  else if (layout === 'folders') ds = await loadFolders(root);
  else if (await exists(join(root, 'annotations.json'))) ds = await loadSegments(root);
  else if ((await exists(join(root, 'videos'))) && (await exists(join(root, 'labels')))) ds = await loadFrameLabels(root);
  else ds = await loadFolders(root);
  if (ds.videos.length === 0) throw invalid(`no labeled videos found in ${root} (layout: ${ds.layout})`);
  return ds;
}

async function loadFolders(root: string): Promise<Dataset> {
  const videos: DatasetVideo[] = [];
  for (const entry of (await readdir(root, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory()) continue;
    for (const file of (await readdir(join(root, entry.name))).sort()) {
      if (!isVideoFile(file)) continue;
      const path = join(root, entry.name, file);
      videos.push({ name: relative(root, path).slice(0, -extname(file).length), path, labels: { kind: 'clip', label: entry.name } });
    }
  }
  return { root, layout: 'folders', classes: classesOf(videos), videos };
}

async function loadFrameLabels(root: string): Promise<Dataset> {
  const videos: DatasetVideo[] = [];
  for (const file of (await readdir(join(root, 'videos'))).sort()) {
    if (!isVideoFile(file)) continue;
    const name = basename(file, extname(file));
    const labelPath = join(root, 'labels', `${name}.txt`);
    if (!(await exists(labelPath))) throw invalid(`no label file for videos/${file}: expected labels/${name}.txt`);
    const labels = (await readFile(labelPath, 'utf8')).split(/\r?\n/).map((l) => l.trim());
    while (labels.length > 0 && labels[labels.length - 1] === '') labels.pop();
    const blank = labels.indexOf('');
    if (blank >= 0) throw invalid(`labels/${name}.txt: line ${blank + 1} is empty (one label per frame expected)`);
    videos.push({ name, path: join(root, 'videos', file), labels: { kind: 'frames', labels } });
  }
  return { root, layout: 'frames', classes: classesOf(videos), videos };
}

async function loadSegments(root: string): Promise<Dataset> {
  let json: { database?: Record<string, { annotations?: { label: string; segment: [number, number] }[] }> };
  try {
    json = JSON.parse(await readFile(join(root, 'annotations.json'), 'utf8'));
  } catch (err) {
    throw invalid(`annotations.json is not valid JSON: ${(err as Error).message}`, err);
  }
  if (!json.database || typeof json.database !== 'object') throw invalid('annotations.json has no "database" object');
  const files = new Map<string, string>();
  for (const dir of [root, join(root, 'videos')]) {
    if (!(await exists(dir))) continue;
    for (const f of await readdir(dir)) if (isVideoFile(f)) files.set(basename(f, extname(f)), join(dir, f));
  }
  const videos: DatasetVideo[] = [];
  for (const [name, entry] of Object.entries(json.database).sort(([a], [b]) => a.localeCompare(b))) {
    const path = files.get(name);
    if (!path) throw invalid(`annotations.json names "${name}" but no video file ${name}.<ext> is in ${root} or ${root}/videos`);
    const segments = (entry.annotations ?? []).map((a, i) => {
      const [s, e] = a.segment ?? [];
      if (typeof a.label !== 'string' || !(typeof s === 'number' && typeof e === 'number' && e > s)) {
        throw invalid(`annotations.json: ${name} annotation ${i} needs a label and segment [start, end] with end > start`);
      }
      return { label: a.label, startSec: s, endSec: e };
    });
    videos.push({ name, path, labels: { kind: 'segments', segments } });
  }
  const classes = classesOf(videos);
  if (!classes.includes(BACKGROUND)) classes.unshift(BACKGROUND);
  return { root, layout: 'segments', classes, videos };
}

async function loadAnnotations(root: string, layout: AnnotationLayout, options: AnnotationReadOptions): Promise<Dataset> {
  const videos: DatasetVideo[] = (await loadAnnotatedVideos(root, layout, options)).map((v) => ({
    name: v.name,
    path: v.path,
    labels: { kind: 'frames', labels: v.labels },
  }));
  // As in the per-frame layout: the classes are the labels used (background only if some frame is).
  return { root, layout, classes: classesOf(videos), videos };
}

function classesOf(videos: DatasetVideo[]): string[] {
  const set = new Set<string>();
  for (const v of videos) {
    if (v.labels.kind === 'clip') set.add(v.labels.label);
    else if (v.labels.kind === 'frames') v.labels.labels.forEach((l) => set.add(l));
    else v.labels.segments.forEach((s) => set.add(s.label));
  }
  return [...set].sort();
}

/**
 * The label of each decoded frame, from its presentation time. `sourceFps` is needed for per-frame
 * label files, whose line k is source frame k (shown at k / sourceFps seconds).
 */
export function labelsAtTimes(labels: ClipLabels, timestampsMs: readonly number[], sourceFps: number): string[] {
  switch (labels.kind) {
    case 'clip':
      return timestampsMs.map(() => labels.label);
    case 'frames': {
      const n = labels.labels.length;
      return timestampsMs.map((t) => labels.labels[Math.min(n - 1, Math.max(0, Math.round((t / 1000) * sourceFps)))]!);
    }
    case 'segments':
      return timestampsMs.map((t) => {
        const sec = t / 1000;
        // Later segments win where annotations overlap, as a later annotation usually refines.
        let label = BACKGROUND;
        for (const s of labels.segments) if (sec >= s.startSec && sec < s.endSec) label = s.label;
        return label;
      });
  }
}

export interface SplitOptions {
  /** Fraction of groups (each video its own group without groupBy) held out for validation, 0..1. */
  valSplit?: number;
  seed?: number;
  /** Videos whose names give the same group (first capture group, else the whole match) stay together. */
  groupBy?: RegExp;
  /** With groupBy: exactly these groups go to validation (e.g. one person), overriding valSplit. */
  valGroups?: string[];
}

export function groupOf(name: string, groupBy?: RegExp): string {
  if (!groupBy) return name;
  const m = groupBy.exec(name);
  return m ? (m[1] ?? m[0]) : name;
}

/** Splits videos so that no group sits on both sides; seeded and independent of listing order. */
export function splitDataset<T extends { name: string }>(videos: readonly T[], o: SplitOptions): { train: T[]; val: T[] } {
  const groups = new Map<string, T[]>();
  for (const v of [...videos].sort((a, b) => a.name.localeCompare(b.name))) {
    const g = groupOf(v.name, o.groupBy);
    groups.set(g, [...(groups.get(g) ?? []), v]);
  }
  let valKeys: Set<string>;
  if (o.valGroups && o.valGroups.length > 0) {
    const unknown = o.valGroups.filter((g) => !groups.has(g));
    if (unknown.length > 0) {
      throw new FramewiseError(ErrorCodes.USAGE, `--val-groups ${unknown.join(',')} not found; groups are: ${[...groups.keys()].join(', ')}`);
    }
    valKeys = new Set(o.valGroups);
  } else {
    const keys = [...groups.keys()];
    const rand = seededRandom(o.seed ?? 0);
    for (let i = keys.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [keys[i], keys[j]] = [keys[j]!, keys[i]!];
    }
    const want = Math.round((o.valSplit ?? 0) * keys.length);
    // Keep at least one group for training whenever a split is asked for.
    valKeys = new Set(keys.slice(0, Math.min(want, keys.length - 1)));
  }
  const train: T[] = [];
  const val: T[] = [];
  for (const [g, vs] of groups) (valKeys.has(g) ? val : train).push(...vs);
  return { train, val };
}
