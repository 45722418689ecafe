// The offline pipeline for one input, wired in one place: decode -> embed -> label -> outputs.
// Lossless and demand-driven: decodeThrough grants ffmpeg one frame of credit per frame written,
// so at most `inFlight` frames are anywhere between the decoder and the files, whatever the
// video's length (memory does not grow with it).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pipe } from 'rxjs';
import type { Embedder } from '../models/embedder.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { decodeThrough } from './decode.ts';
import { embed, embedCredit } from './embed-stage.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { label } from './label-stage.ts';
import { isUrl, probe, requireBinary, type VideoInfo } from './probe.ts';
import { openOutputs, SourceFrameMapper, type OutputFormat } from './sinks/index.ts';
import type { SmoothingOptions } from './segment.ts';
import { writeEach } from './write-stage.ts';
import type { CropPolicy, FrameLabel, Segment } from '../core/types.ts';

/** What a trained head needs from the decoder: it must see frames as it saw them in training. */
export interface HeadInput {
  head: RecurrentHead;
  classes: readonly string[];
  /** Frames per second the head runs at; null = the source's own rate. */
  fps: number | null;
  crop: CropPolicy;
}

export interface LabelVideoOptions extends HeadInput {
  /** A file path, an http(s)/rtsp URL, '-' for stdin, or a readable stream. */
  input: string | NodeJS.ReadableStream;
  /** Output base name (files are `<outDir>/<name>.<suffix>`); also the stream id. */
  name: string;
  embedder: Embedder;
  /** Output folder, or '-' for JSONL on `stdout`. */
  outDir: string;
  formats?: readonly OutputFormat[];
  smoothing?: SmoothingOptions;
  stdout?: NodeJS.WritableStream;
  /** Also write one JSONL/CSV line per SOURCE frame (labels mapped back from the head's rate). */
  everyFrame?: boolean;
  /** Frames of one stream stepped through the head per call (results do not depend on it). */
  chunk?: number;
  /** Most frames between the decoder and the outputs. */
  inFlight?: number;
  /** Called with each frame's label once it is written (at the head's rate). */
  onLabel?: (label: FrameLabel) => void;
  /** Called after each labeled frame with the frames done and the expected total, if known. */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Aborting stops decoding; the outputs are finished with the frames labeled so far. */
  signal?: AbortSignal;
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

const run = promisify(execFile);

/**
 * Presentation times (ms) of every frame of a local file's video stream, from packet timestamps
 * (no decoding, so it is fast); sorted because B-frames store packets out of display order.
 */
export async function sourceFrameTimes(path: string): Promise<number[]> {
  const { stdout } = await run(
    requireBinary('ffprobe'),
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', `file:${path}`],
    { maxBuffer: 256 * 1024 * 1024 },
  );
  const times = stdout.split('\n').map((l) => parseFloat(l)).filter(Number.isFinite).sort((a, b) => a - b);
  const t0 = times[0] ?? 0;
  // decode() reports times relative to the stream start (ffmpeg subtracts the start time).
  return times.map((t) => (t - t0) * 1000);
}

export async function labelVideo(o: LabelVideoOptions): Promise<LabelVideoResult> {
  const local = typeof o.input === 'string' && o.input !== '-' && !isUrl(o.input);
  // Probing first turns a missing file or a non-video into a clear error before any output exists.
  const info = typeof o.input === 'string' && o.input !== '-' ? await probe(o.input) : undefined;
  const expected = info && info.durationMs > 0 ? Math.round((info.durationMs / 1000) * (o.fps ?? info.fps)) || undefined : undefined;
  if (o.everyFrame && !local) {
    throw new FramewiseError(ErrorCodes.USAGE, '--every-frame needs a local file (source frame times are read from it)');
  }
  const mapper = o.everyFrame ? new SourceFrameMapper(await sourceFrameTimes(o.input as string)) : undefined;
  const outputs = openOutputs({
    name: o.name,
    outDir: o.outDir,
    classes: o.classes,
    formats: o.formats,
    smoothing: o.smoothing,
    stdout: o.stdout as never,
  });
  // With --every-frame the per-frame files get source frames; segments are the same either way.
  const write = async (l: FrameLabel) => {
    if (!mapper) return outputs.write(l);
    for (const s of mapper.push(l)) await outputs.write(s);
  };

  let frames = 0;
  let aborted = false;
  const chunk = o.chunk ?? 16;
  const stage = pipe(
    embed(o.embedder),
    label(o.head, o.classes, { chunk }),
    writeEach(write),
  );
  const frames$ = decodeThrough(
    o.input,
    { size: o.embedder.inputSize, crop: o.crop, fps: o.fps ?? undefined, streamId: o.name },
    stage,
    // Enough for the embedder's calls and the head's chunk at once, so neither starves the other.
    o.inFlight ?? embedCredit() + chunk,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const sub = frames$.subscribe({
        next: (l) => {
          frames++;
          o.onLabel?.(l);
          o.onProgress?.(frames, expected);
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
    return { name: o.name, frames, segments, files: outputs.files, info, aborted };
  }
  if (mapper) for (const s of mapper.flush()) await outputs.write(s);
  const segments = await outputs.close(info?.durationMs || undefined);
  return { name: o.name, frames, segments, files: outputs.files, info, aborted };
}
