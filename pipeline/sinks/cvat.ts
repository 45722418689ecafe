// `<name>.cvat.xml`: CVAT for video 1.1, the XML of a video task's export, importable into the task
// ("Upload annotations", format "CVAT 1.1") for correction. And its reader.
//
// Convention: CVAT numbers frames of the SOURCE video (frame k is shown at k / fps s), whatever rate
// framewise's head ran at; a task made with start_frame S and frame step N holds source frames S,
// S+N, S+2N, ... and its exported frame numbers are those source numbers. Each segment is one track
// holding a whole-frame box: a keyframe at its first frame, and an `outside` keyframe at the frame
// after its last (omitted when it runs to the end of the video). Gaps (`unknown`, `background`) have
// no track. Scores are not written: CVAT refuses attributes the task does not declare.
import type { Segment } from '../../core/types.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { DocumentSink } from './document-sink.ts';
import { type AnnotationOptions, mediaName, requireMedia, segmentsToIntervals } from './annotation-media.ts';
import { attr, buildXml, child, children, parseXml, text, type XmlNode } from './xml.ts';

export const CVAT_VERSION = '1.1';

export function cvatXml(segments: readonly Segment[], options: AnnotationOptions, taskName: string): string {
  const media = requireMedia('cvat', options);
  const intervals = segmentsToIntervals(segments, media.fps, options.keepUnknown, media.frameCount);
  const size = media.frameCount ?? intervals.reduce((n, i) => Math.max(n, i.end), 0);
  const w = media.width ?? 1;
  const h = media.height ?? 1;
  const box = (frame: number, outside: boolean) => ({
    '@_frame': frame,
    '@_keyframe': 1,
    '@_outside': outside ? 1 : 0,
    '@_occluded': 0,
    '@_xtl': '0.00',
    '@_ytl': '0.00',
    '@_xbr': w.toFixed(2),
    '@_ybr': h.toFixed(2),
    '@_z_order': 0,
  });
  const labels = [...new Set(intervals.map((i) => i.label))];
  return `${buildXml({
    annotations: {
      version: CVAT_VERSION,
      meta: {
        task: {
          name: taskName,
          size,
          mode: 'interpolation',
          overlap: 0,
          start_frame: 0,
          stop_frame: Math.max(0, size - 1),
          frame_filter: '',
          labels: { label: labels.map((name) => ({ name, type: 'any' })) },
          original_size: { width: w, height: h },
          source: mediaName(media),
        },
        dumped: new Date().toISOString(),
      },
      track: intervals.map((iv, id) => ({
        '@_id': id,
        '@_label': iv.label,
        '@_source': 'auto',
        box: iv.end < size ? [box(iv.start, false), box(iv.end, true)] : [box(iv.start, false)],
      })),
    },
  })}\n`;
}

export function cvatSink(file: string, taskName: string, options: AnnotationOptions): DocumentSink {
  requireMedia('cvat', options);
  return new DocumentSink(file, (segs) => cvatXml(segs, options, taskName));
}

// ---- reader ---------------------------------------------------------------------------------

/** A labeled run of source frames [start, end), `end` undefined = to the end of the video.
 * `where` says where in the file it comes from, for error messages. */
export interface AnnotatedInterval {
  label: string;
  start: number;
  end?: number;
  where: string;
}

export interface CvatTask {
  /** meta/task/source: the video's file name, if the export has it. */
  source?: string;
  name?: string;
  startFrame: number;
  /** Last source frame of the task (inclusive), if known. */
  stopFrame?: number;
  step: number;
  width?: number;
  height?: number;
  intervals: AnnotatedInterval[];
}

const SHAPES = ['box', 'polygon', 'polyline', 'points', 'cuboid', 'ellipse', 'mask', 'skeleton'];

/** Reads a CVAT for video 1.1 export (a task's or a job's annotations.xml). */
export function parseCvatXml(xml: string, file: string): CvatTask {
  const bad = (msg: string) => new FramewiseError(ErrorCodes.DATASET_INVALID, `${file}: ${msg}`);
  const root = parseXml(xml, file, ['track', 'tag', 'image', ...SHAPES]).annotations as XmlNode | undefined;
  if (!root || typeof root !== 'object') throw bad('no <annotations> root: not a CVAT XML export');
  const version = text(root, 'version');
  if (version !== undefined && !version.startsWith('1.')) throw bad(`CVAT XML version ${version} (1.x expected)`);
  const meta = child(root, 'meta');
  if (child(meta, 'project')) throw bad('a project export: export each video task (format "CVAT for video 1.1") instead');
  if (children(root, 'image').length > 0) throw bad('a "CVAT for images" export: export the task as "CVAT for video 1.1"');
  const task = child(meta, 'task') ?? child(meta, 'job');
  const int = (v: string | undefined, what: string) => {
    if (v === undefined || v.trim() === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw bad(`${what} is ${JSON.stringify(v)}, not a frame number`);
    return n;
  };
  const startFrame = int(text(task, 'start_frame'), 'start_frame') ?? 0;
  const stopFrame = int(text(task, 'stop_frame'), 'stop_frame');
  const size = int(text(task, 'size'), 'size');
  const filter = (text(task, 'frame_filter') ?? '').trim();
  const stepMatch = /^step\s*=\s*(\d+)$/.exec(filter);
  if (filter !== '' && !stepMatch) throw bad(`frame_filter "${filter}" is not understood (step=N expected)`);
  const step = stepMatch ? Number(stepMatch[1]) : 1;
  if (step < 1) throw bad('frame_filter step=0');
  const size0 = child(task, 'original_size');
  const taskEnd = stopFrame !== undefined ? stopFrame + 1 : size !== undefined ? startFrame + size * step : undefined;

  const frameOf = (v: string | undefined, where: string) => {
    const f = int(v, `${where}: frame`);
    if (f === undefined) throw bad(`${where} has no frame`);
    if ((f - startFrame) % step !== 0 || f < startFrame || (taskEnd !== undefined && f >= taskEnd + step)) {
      throw bad(
        `${where}: frame ${f} is not a frame of the task (start_frame ${startFrame}, step ${step}${stopFrame !== undefined ? `, stop_frame ${stopFrame}` : ''})`,
      );
    }
    return f;
  };

  const intervals: AnnotatedInterval[] = [];
  for (const track of children(root, 'track')) {
    const label = attr(track, 'label');
    const id = attr(track, 'id') ?? '?';
    if (!label) throw bad(`track ${id} has no label`);
    const shapes = SHAPES.flatMap((k) => children(track, k)).map((s) => ({
      frame: frameOf(attr(s, 'frame'), `track ${id}`),
      outside: attr(s, 'outside') === '1' || attr(s, 'outside') === 'true',
    }));
    shapes.sort((a, b) => a.frame - b.frame);
    let on: number | undefined;
    for (const s of shapes) {
      if (!s.outside && on === undefined) on = s.frame;
      else if (s.outside && on !== undefined) {
        intervals.push({ label, start: on, end: s.frame, where: `track ${id} (frames ${on}-${s.frame - 1})` });
        on = undefined;
      }
    }
    if (on !== undefined)
      intervals.push({ label, start: on, end: taskEnd, where: `track ${id} (frames ${on}-${taskEnd !== undefined ? taskEnd - 1 : 'end'})` });
  }
  for (const tag of children(root, 'tag')) {
    const label = attr(tag, 'label');
    const f = frameOf(attr(tag, 'frame'), 'tag');
    if (!label) throw bad(`tag at frame ${f} has no label`);
    intervals.push({ label, start: f, end: f + step, where: `tag at frame ${f}` });
  }
  const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
  return {
    source: text(task, 'source')?.trim() || undefined,
    name: text(task, 'name'),
    startFrame,
    stopFrame: stopFrame ?? (taskEnd !== undefined ? taskEnd - 1 : undefined),
    step,
    width: num(text(size0, 'width')),
    height: num(text(size0, 'height')),
    intervals,
  };
}
