// `<name>.labelstudio.json`: Label Studio tasks with predictions for a video labeling project with
// `<TimelineLabels>` (import the file into the project: the regions appear as pre-annotations to
// accept or correct). And the reader of Label Studio's JSON export and of the labeling config.
//
// Convention: Label Studio counts video frames from 1 at the `frameRate` of the config's <Video>
// tag (24 when absent), ranges inclusive at both ends; its frame n is source frame n - 1 when that
// rate is the video's. A segment over source frames [s, e) is the range {start: s + 1, end: e}.
// Each region carries the segment's mean probability as `score`; the prediction's `score` is the
// frame-weighted mean over its regions. Gaps (`unknown`, `background`) have no region.
import type { Segment } from '../../core/types.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { DocumentSink } from './document-sink.ts';
import { type AnnotationOptions, requireMedia, segmentsToIntervals } from './annotation-media.ts';
import { round6 } from './files.ts';
import type { AnnotatedInterval } from './cvat.ts';
import { attr, parseXml, type XmlNode } from './xml.ts';

export const LS_DEFAULTS = Object.freeze({ fromName: 'videoLabels', toName: 'video', dataKey: 'video', modelVersion: 'framewise', frameRate: 24 });

export interface LabelStudioRegion {
  id: string;
  type: 'timelinelabels';
  from_name: string;
  to_name: string;
  origin?: string;
  score?: number;
  value: { ranges: { start: number; end: number }[]; timelinelabels: string[] };
}

export function labelStudioTasks(segments: readonly Segment[], options: AnnotationOptions, name: string) {
  const media = requireMedia('labelstudio', options);
  const intervals = segmentsToIntervals(segments, media.fps, options.keepUnknown, media.frameCount);
  const result: LabelStudioRegion[] = intervals.map((iv, i) => ({
    id: `fw${i}`,
    type: 'timelinelabels',
    from_name: options.fromName ?? LS_DEFAULTS.fromName,
    to_name: options.toName ?? LS_DEFAULTS.toName,
    origin: 'prediction',
    score: round6(iv.score),
    value: { ranges: [{ start: iv.start + 1, end: iv.end }], timelinelabels: [iv.label] },
  }));
  const frames = intervals.reduce((n, iv) => n + iv.end - iv.start, 0);
  const score = frames > 0 ? intervals.reduce((s, iv) => s + iv.score * (iv.end - iv.start), 0) / frames : 0;
  return [
    {
      data: { [options.dataKey ?? LS_DEFAULTS.dataKey]: options.videoUrl ?? media.path },
      meta: { framewise: { name, fps: media.fps, frameCount: media.frameCount ?? null } },
      predictions: [{ model_version: options.modelVersion ?? LS_DEFAULTS.modelVersion, score: round6(score), result }],
    },
  ];
}

export function labelStudioSink(file: string, name: string, options: AnnotationOptions): DocumentSink {
  requireMedia('labelstudio', options);
  return new DocumentSink(file, (segs) => `${JSON.stringify(labelStudioTasks(segs, options, name), null, 2)}\n`);
}

// ---- readers --------------------------------------------------------------------------------

export interface LabelStudioConfig {
  /** The <Video> tag's frameRate (Label Studio's default 24 when absent). */
  frameRate: number;
  /** Task data key of the video: `video` for value="$video". */
  dataKey?: string;
  /** The <Video> tag's name (what regions point at with to_name). */
  videoName?: string;
  /** Labels declared in the <TimelineLabels> control(s). */
  labels: string[];
}

function elements(node: unknown, name: string, out: XmlNode[] = []): XmlNode[] {
  if (Array.isArray(node)) node.forEach((n) => elements(n, name, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node as XmlNode)) {
      if (k.startsWith('@_')) continue;
      if (k === name) (Array.isArray(v) ? v : [v]).forEach((x) => x && typeof x === 'object' && out.push(x as XmlNode));
      elements(v, name, out);
    }
  }
  return out;
}

/** Reads a labeling config (the XML of the project's Labeling Interface). */
export function parseLabelStudioConfig(xml: string, file: string): LabelStudioConfig {
  const doc = parseXml(xml, file, []);
  const videos = elements(doc, 'Video');
  if (videos.length === 0) throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: no <Video> tag in the labeling config`);
  if (videos.length > 1)
    throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: ${videos.length} <Video> tags; framewise reads projects with one video per task`);
  const v = videos[0]!;
  const rate = attr(v, 'frameRate') ?? attr(v, 'framerate');
  const frameRate = rate === undefined ? LS_DEFAULTS.frameRate : Number(rate);
  if (!(frameRate > 0)) throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: <Video frameRate="${rate}"> is not a frame rate`);
  const value = attr(v, 'value');
  const labels = elements(doc, 'TimelineLabels')
    .flatMap((t) => elements(t, 'Label'))
    .map((l) => attr(l, 'value') ?? '')
    .filter(Boolean);
  return { frameRate, dataKey: value?.startsWith('$') ? value.slice(1) : undefined, videoName: attr(v, 'name'), labels };
}

export interface LabelStudioTask {
  /** Task id, or its position in the file. */
  id: string;
  /** The video reference: data[dataKey] (a URL or path) and the uploaded file name, if any. */
  video?: string;
  fileUpload?: string;
  /** Intervals in Label Studio frames turned 0-based, end exclusive: [start - 1, end). */
  intervals: AnnotatedInterval[];
  /** False for a task nobody has annotated yet (no annotation, or only cancelled ones). */
  annotated: boolean;
}

/**
 * Reads a Label Studio JSON export (an array of tasks). `from` picks the annotators' work (the
 * default; the most recently updated one that was not cancelled) or the predictions (as written
 * by framewise). Only `timelinelabels` results are read.
 */
export function parseLabelStudioExport(json: string, file: string, o: { dataKey?: string; from?: 'annotations' | 'predictions' } = {}): LabelStudioTask[] {
  const bad = (msg: string) => new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: ${msg}`);
  let tasks: unknown;
  try {
    tasks = JSON.parse(json);
  } catch (err) {
    throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!Array.isArray(tasks)) throw bad('not a Label Studio JSON export (an array of tasks expected)');
  return tasks.map((t: Record<string, any>, i) => {
    const id = t?.id !== undefined ? String(t.id) : `#${i + 1}`;
    const data = (t?.data ?? {}) as Record<string, unknown>;
    const strings = Object.values(data).filter((x): x is string => typeof x === 'string');
    const key = o.dataKey ?? LS_DEFAULTS.dataKey;
    const video = typeof data[key] === 'string' ? (data[key] as string) : strings.length === 1 ? strings[0] : undefined;
    const source = o.from ?? 'annotations';
    const candidates = ((t?.[source] ?? []) as Record<string, any>[]).filter((a) => a && !a.was_cancelled && Array.isArray(a.result));
    // The latest work wins when several annotators labeled the task (as Label Studio's own
    // "ground truth" is usually the reviewed, latest one).
    candidates.sort((a, b) => String(a.updated_at ?? '').localeCompare(String(b.updated_at ?? '')));
    const chosen = candidates[candidates.length - 1];
    const intervals: AnnotatedInterval[] = [];
    for (const r of (chosen?.result ?? []) as Record<string, any>[]) {
      if (r?.type !== 'timelinelabels') continue;
      const labels = r.value?.timelinelabels;
      if (!Array.isArray(labels) || labels.length === 0) continue;
      if (labels.length > 1)
        throw bad(`task ${id} region ${r.id ?? '?'}: ${labels.length} labels on one region (${labels.join(', ')}); framewise needs one label per frame`);
      for (const range of (r.value?.ranges ?? []) as { start: unknown; end: unknown }[]) {
        const s = Number(range?.start);
        const e = Number(range?.end);
        if (!Number.isInteger(s) || !Number.isInteger(e) || s < 1 || e < s) {
          throw bad(`task ${id} region ${r.id ?? '?'}: range ${JSON.stringify(range)} is not frames start..end (from 1, end >= start)`);
        }
        intervals.push({ label: String(labels[0]), start: s - 1, end: e, where: `task ${id} region ${r.id ?? '?'} (frames ${s}-${e})` });
      }
    }
    return { id, video, fileUpload: typeof t?.file_upload === 'string' ? t.file_upload : undefined, intervals, annotated: chosen !== undefined };
  });
}
