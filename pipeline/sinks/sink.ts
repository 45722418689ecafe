// The common shape of an output writer, and the `--formats` vocabulary.
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { FrameLabel, Segment } from '../../core/types.ts';

/** Writers fed as frames are labeled: per-frame sinks use `frame`, segment sinks `segments`. */
export interface LabelSink {
  /** The file written, or '-' for a stream such as stdout. */
  readonly path: string;
  /** One labeled frame, in index order. Resolves when the sink can take the next one (backpressure). */
  frame(label: FrameLabel): void | Promise<void>;
  /** Several frames in index order, as `frame` on each would write them; optional (per-line files write them in one call). */
  frameBatch?(labels: readonly FrameLabel[]): void | Promise<void>;
  /** Segments that became final, in time order. */
  segments(segments: readonly Segment[]): void | Promise<void>;
  /** Finishes the output (also after an abort: what was written stays valid). Idempotent.
   * `complete` is false when the run stopped before the end of the input (a signal, an error). */
  close(end?: { complete: boolean }): void | Promise<void>;
}

export const OUTPUT_FORMATS = ['jsonl', 'csv', 'vtt', 'activitynet'] as const;
/** Pre-annotations for correction in annotation tools: written only when named in `--formats`
 * (they need the source video's frame rate, and `all` keeps meaning the four outputs above). */
export const ANNOTATION_FORMATS = ['cvat', 'labelstudio', 'elan'] as const;
export type AnnotationFormat = (typeof ANNOTATION_FORMATS)[number];
export type OutputFormat = (typeof OUTPUT_FORMATS)[number] | AnnotationFormat;
const KNOWN_FORMATS: readonly OutputFormat[] = [...OUTPUT_FORMATS, ...ANNOTATION_FORMATS];

/** File name suffix per format: `<name><suffix>`. */
export const FORMAT_SUFFIX: Readonly<Record<OutputFormat, string>> = Object.freeze({
  jsonl: '.frames.jsonl',
  csv: '.csv',
  vtt: '.vtt',
  activitynet: '.segments.json',
  cvat: '.cvat.xml',
  labelstudio: '.labelstudio.json',
  elan: '.eaf',
});

/**
 * Parses `--formats`: a comma-separated subset of OUTPUT_FORMATS and ANNOTATION_FORMATS (case and
 * spaces ignored, duplicates dropped, `all` for every OUTPUT_FORMAT); undefined or empty gives
 * OUTPUT_FORMATS.
 */
export function parseFormats(spec?: string): OutputFormat[] {
  if (spec === undefined || spec.trim() === '') return [...OUTPUT_FORMATS];
  const picked = new Set<OutputFormat>();
  for (const raw of spec.split(',')) {
    const f = raw.trim().toLowerCase();
    if (f === '') continue;
    if (f === 'all') {
      OUTPUT_FORMATS.forEach((x) => picked.add(x));
    } else if ((KNOWN_FORMATS as readonly string[]).includes(f)) {
      picked.add(f as OutputFormat);
    } else {
      throw new FramewiseError(ErrorCodes.USAGE, `unknown output format '${raw.trim()}' in --formats (choose from ${KNOWN_FORMATS.join(', ')}, or all)`);
    }
  }
  if (picked.size === 0) throw new FramewiseError(ErrorCodes.USAGE, `--formats '${spec}' names no format`);
  return KNOWN_FORMATS.filter((f) => picked.has(f));
}
