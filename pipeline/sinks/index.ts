// The outputs of one labeled input: a Segmenter plus one sink per chosen format, fed frame by
// frame. The lead's `label` command opens one OutputSet per input, calls write() per frame, and
// close(durationMs) at the end, or abort() on Ctrl-C / a failed input (files stay valid).
// Files are written under staging names and renamed into place by close() or abort(), the
// segments file last (staging.ts); its `complete` says which of the two ended the run.
import path from 'node:path';
import type { Writable } from 'node:stream';
import { Segmenter, type SmoothingOptions } from '../segment.ts';
import type { FrameLabel, Segment } from '../../core/types.ts';
import { ActivityNetSink, type ExternalData } from './activitynet.ts';
import type { AnnotationOptions } from './annotation-media.ts';
import { cvatSink } from './cvat.ts';
import { elanSink } from './elan.ts';
import { labelStudioSink } from './label-studio.ts';
import { CsvSink } from './csv.ts';
import { ensureDir } from './files.ts';
import { openStage, removeStaleStages, type Stage } from './staging.ts';
import { JsonlFileSink, JsonlStreamSink } from './jsonl.ts';
import { FORMAT_SUFFIX, OUTPUT_FORMATS, type LabelSink, type OutputFormat } from './sink.ts';
import { VttSink } from './vtt.ts';

export { parseFormats, OUTPUT_FORMATS, ANNOTATION_FORMATS, FORMAT_SUFFIX, type OutputFormat, type LabelSink } from './sink.ts';
export { annotationMedia, type AnnotationMedia, type AnnotationOptions } from './annotation-media.ts';
export { expandToSourceFrames, SourceFrameMapper } from './every-frame.ts';

export interface OutputOptions {
  /** The input's name: files are `<outDir>/<name><suffix>`; a name with '/' makes subfolders.
   * Its basename is the video id in the ActivityNet results. */
  name: string;
  /** Output folder (created if missing), or '-' for JSONL lines on `stdout` only. */
  outDir: string;
  /** Class labels in the bundle's order (the order of FrameLabel.probs). */
  classes: readonly string[];
  /** Default: all formats. Ignored for outDir '-'. */
  formats?: readonly OutputFormat[];
  smoothing?: SmoothingOptions;
  /** The stream for outDir '-'; default process.stdout. */
  stdout?: Writable;
  externalData?: ExternalData;
  /** For the annotation-tool formats (cvat, labelstudio, elan): the source video and options. */
  annotation?: AnnotationOptions;
  /** Told about stale staging files removed from the output folder (left by a killed run). */
  onNotice?: (message: string) => void;
}

export interface OutputSet {
  /** The files being written, by format (empty for '-'). */
  readonly files: Partial<Record<OutputFormat, string>>;
  /** Segments final so far (all of them after close). */
  readonly segments: readonly Segment[];
  /** One labeled frame, in order. Rejects with E_OUTPUT_FAILED when a file cannot be written. */
  write(label: FrameLabel): Promise<void>;
  /** Several labeled frames, in order: the same files as write() on each, with fewer calls. */
  writeMany(labels: readonly FrameLabel[]): Promise<void>;
  /** Ends the input: `endMs` is where the last frame stops (e.g. the video's duration; ignored
   * unless after the last frame). Flushes the last segments, closes every file. */
  close(endMs?: number): Promise<Segment[]>;
  /** Like close, after a failure or Ctrl-C: finishes every file with the frames written so far
   * (the segments file says `complete: false`), never rejects (the run has already failed; a
   * second error would hide the first). */
  abort(): Promise<Segment[]>;
}

export function openOutputs(options: OutputOptions): OutputSet {
  const { name, outDir, classes } = options;
  const segmenter = new Segmenter(classes, options.smoothing);
  const sinks: LabelSink[] = [];
  const files: Partial<Record<OutputFormat, string>> = {};
  const all: Segment[] = [];
  let stage: Stage | undefined;

  if (outDir === '-') {
    sinks.push(new JsonlStreamSink(options.stdout ?? process.stdout, name, classes));
  } else {
    const base = path.join(outDir, name);
    const dir = path.dirname(base);
    ensureDir(dir);
    const stale = removeStaleStages(dir);
    if (stale.length > 0) {
      options.onNotice?.(
        `removed ${stale.length} staging file(s) of an earlier run that was killed before it finished: ${stale.map((f) => path.basename(f)).join(', ')}`,
      );
    }
    stage = openStage(dir);
    try {
      for (const format of options.formats ?? OUTPUT_FORMATS) {
        const file = base + FORMAT_SUFFIX[format];
        files[format] = file;
        sinks.push(openSink(format, stage.staged(file), options));
      }
    } catch (err) {
      // Reporting the open failure matters more than a close failure of a sibling.
      for (const s of sinks)
        void Promise.resolve()
          .then(() => s.close())
          .catch(() => undefined);
      stage.discard();
      throw err;
    }
  }

  let closed = false;
  const deliver = async (segs: Segment[]) => {
    if (segs.length === 0) return;
    all.push(...segs);
    for (const s of sinks) await s.segments(segs);
  };

  const finish = async (endMs: number | undefined, tolerant: boolean): Promise<Segment[]> => {
    // tolerant = aborted: the files hold part of the input and say so.
    if (closed) return all;
    closed = true;
    let first: unknown = null;
    try {
      const end = endMs !== undefined && endMs > segmenter.lastTimestampMs ? endMs : undefined;
      await deliver(segmenter.flush(end));
    } catch (err) {
      first = err;
    }
    for (const s of sinks) {
      try {
        await s.close({ complete: !tolerant && first === null });
      } catch (err) {
        first ??= err;
      }
    }
    if (stage) {
      // The segments file last: once it is in place, so is everything else of this run.
      const order = Object.entries(files)
        .sort(([a], [b]) => Number(a === 'activitynet') - Number(b === 'activitynet'))
        .map(([, f]) => f);
      try {
        // Also after a write error: what was written is kept, and says it is partial.
        stage.commit(order);
      } catch (err) {
        first ??= err;
      } finally {
        stage.discard();
      }
    }
    if (first !== null && !tolerant) throw first;
    return all;
  };

  return {
    files,
    segments: all,
    async write(label) {
      const segs = segmenter.push(label);
      for (const s of sinks) await s.frame(label);
      await deliver(segs);
    },
    async writeMany(labels) {
      if (labels.length === 0) return;
      const segs: Segment[] = [];
      for (const l of labels) for (const s of segmenter.push(l)) segs.push(s);
      for (const s of sinks) {
        if (s.frameBatch) await s.frameBatch(labels);
        else for (const l of labels) await s.frame(l);
      }
      await deliver(segs);
    },
    close: (endMs) => finish(endMs, false),
    abort: () => finish(undefined, true),
  };
}

function openSink(format: OutputFormat, file: string, o: OutputOptions): LabelSink {
  const annotation = o.annotation ?? {};
  switch (format) {
    case 'jsonl':
      return new JsonlFileSink(file, o.classes);
    case 'csv':
      return new CsvSink(file, o.classes);
    case 'vtt':
      return new VttSink(file);
    case 'activitynet':
      return new ActivityNetSink(file, path.basename(o.name), o.externalData);
    case 'cvat':
      return cvatSink(file, path.basename(o.name), annotation);
    case 'labelstudio':
      return labelStudioSink(file, o.name, annotation);
    case 'elan':
      return elanSink(file, annotation);
  }
}
