// The offline pipeline for one input, wired in one place: decode -> embed -> label -> outputs.
// Lossless and demand-driven: decodeThrough grants ffmpeg one frame of credit per frame written,
// so at most `inFlight` frames are anywhere between the decoder and the files, whatever the
// video's length (memory does not grow with it).
import { basename, extname } from 'node:path';
import { pipe } from 'rxjs';
import type { Embedder } from '../models/embedder.ts';
import type { FeatureSet } from '../models/motion.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { decodeThrough } from './decode.ts';
import { embed, embedCredit } from './embed-stage.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { labelChunks } from './label-stage.ts';
import { unknownRuleOf, type UnknownFarMeta } from '../models/unknown-rule.ts';
import { isUrl, probe, sourceFrameTimes, type VideoInfo } from './probe.ts';
import { annotationMedia, openOutputs, SourceFrameMapper, type AnnotationOptions, type OutputFormat } from './sinks/index.ts';
import type { SmoothingOptions } from './segment.ts';
import { writeEach } from './write-stage.ts';
import type { CropPolicy, FrameLabel, Segment } from '../core/types.ts';

/** What a trained head needs from the decoder: it must see frames as it saw them in training. */
/**
 * What labeling needs of a trained model: the recurrent head, the embedder it was trained on, and
 * the bundle's classes, frame rate and crop. `openModel` returns exactly this.
 */
export interface LabelingModel {
  head: RecurrentHead;
  embedder: Embedder;
  meta: {
    readonly classes: readonly string[];
    /** Frames per second the head runs at; null = the source's own rate. */
    readonly fps: number | null;
    readonly crop: CropPolicy;
    /** What the head takes per frame (default the embedding alone). */
    readonly features?: FeatureSet;
    /** Top probability below which a frame is `unknown` (the bundle's calibration; absent: never). */
    readonly unknownBelow?: number;
    /** The bundle's distance check against its training data (absent: none). */
    readonly unknownFar?: UnknownFarMeta;
  };
}

export interface LabelVideoOptions {
  /** The bundle and its embedder, as `openModel` returns them. */
  model: LabelingModel;
  /** A file path, an http(s)/rtsp URL, '-' for stdin, or a readable stream. */
  input: string | NodeJS.ReadableStream;
  /** Output base name (files are `<outDir>/<name>.<suffix>`); also the stream id. Default: the input's file name without extension, else 'stdin'. */
  name?: string;
  /** Output folder, or '-' for JSONL on `stdout`. */
  outDir: string;
  formats?: readonly OutputFormat[];
  smoothing?: SmoothingOptions;
  stdout?: NodeJS.WritableStream;
  /** Options of the annotation-tool formats (cvat, labelstudio, elan); the source video is found here. */
  annotation?: AnnotationOptions;
  /** Also write one JSONL/CSV line per SOURCE frame (labels mapped back from the head's rate). */
  everyFrame?: boolean;
  /** Frames of one stream stepped through the head per call (results do not depend on it). */
  chunk?: number;
  /** Overrides the bundle's `unknownBelow` (0: never unknown, the distance check off too). */
  unknownBelow?: number;
  /** Most frames between the decoder and the outputs. */
  inFlight?: number;
  /** Called with each frame's label once it is written (at the head's rate). */
  onLabel?: (label: FrameLabel) => void;
  /** Called after each labeled frame with the frames done and the expected total, if known. */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Aborting stops decoding; the outputs are finished with the frames labeled so far. */
  signal?: AbortSignal;
  /** Told what the user should know but is no error (stale staging files removed). */
  onNotice?: (message: string) => void;
}

export interface LabelVideoResult {
  name: string;
  /** Frames labeled by the head (at its fps). */
  frames: number;
  segments: Segment[];
  files: Partial<Record<OutputFormat, string>>;
  info?: VideoInfo;
  /** True when the run was aborted (the outputs hold the frames done until then). */
  aborted: boolean;
}

/** Labels every frame of one video with a trained model and writes the outputs (see LabelVideoOptions). */
export async function labelVideo(o: LabelVideoOptions): Promise<LabelVideoResult> {
  const { head, embedder, meta } = o.model;
  const name = o.name ?? defaultName(o.input);
  const local = typeof o.input === 'string' && o.input !== '-' && !isUrl(o.input);
  // Probing first turns a missing file or a non-video into a clear error before any output exists.
  const info = typeof o.input === 'string' && o.input !== '-' ? await probe(o.input) : undefined;
  const expected = info && info.durationMs > 0 ? Math.round((info.durationMs / 1000) * (meta.fps ?? info.fps)) || undefined : undefined;
  if (o.everyFrame && !local) {
    throw new FramewiseError(ErrorCodes.USAGE, '--every-frame needs a local file (source frame times are read from it)');
  }
  const mapper = o.everyFrame ? new SourceFrameMapper(await sourceFrameTimes(o.input as string)) : undefined;
  const outputs = openOutputs({
    name,
    outDir: o.outDir,
    classes: meta.classes,
    formats: o.formats,
    smoothing: o.smoothing,
    stdout: o.stdout as never,
    annotation: { ...o.annotation, media: local && info ? annotationMedia(o.input as string, info) : undefined },
    onNotice: o.onNotice,
  });
  // With --every-frame the per-frame files get source frames; segments are the same either way.
  // A chunk of labels per call (see labelChunks).
  const write = async (ls: FrameLabel[]) => {
    if (!mapper) return outputs.writeMany(ls);
    for (const l of ls) await outputs.writeMany(mapper.push(l));
  };

  let frames = 0;
  let aborted = false;
  const chunk = o.chunk ?? 16;
  const stage = pipe(
    embed(embedder, { features: meta.features }),
    labelChunks(head, meta.classes, { chunk, unknown: unknownRuleOf(meta, o.unknownBelow) }),
    writeEach(write),
  );
  const frames$ = decodeThrough(
    o.input,
    { size: embedder.inputSize, crop: meta.crop, fps: meta.fps ?? undefined, streamId: name },
    stage,
    // Enough for the embedder's calls and the head's chunk at once, so neither starves the other.
    o.inFlight ?? embedCredit() + chunk,
    (ls) => ls.length,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const sub = frames$.subscribe({
        next: (ls) => {
          for (const l of ls) {
            frames++;
            o.onLabel?.(l);
            o.onProgress?.(frames, expected);
          }
        },
        error: reject,
        complete: resolve,
      });
      const onAbort = () => {
        aborted = true;
        sub.unsubscribe();
        resolve();
      };
      if (o.signal?.aborted) onAbort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
    });
  } catch (err) {
    // Keep what was computed: the files are finished with the frames labeled before the failure.
    await outputs.abort();
    throw err;
  }
  if (aborted) {
    const segments = await outputs.abort();
    return { name, frames, segments, files: outputs.files, info, aborted };
  }
  if (mapper) await outputs.writeMany(mapper.flush());
  const segments = await outputs.close(info?.durationMs || undefined);
  return { name, frames, segments, files: outputs.files, info, aborted };
}

function defaultName(input: string | NodeJS.ReadableStream): string {
  if (typeof input !== 'string' || input === '-') return 'stdin';
  const file = isUrl(input) ? new URL(input).pathname : input;
  return basename(file, extname(file)) || 'stream';
}
