// The embedding pass of training and evaluation: every video of a dataset is decoded and embedded
// once per view (the center crop, plus augmented copies for training) and cached as an embedding
// file, so later epochs, runs and searches never touch the CNN again.
import { lastValueFrom, toArray } from 'rxjs';
import { DECODE_REVISION, decodeThrough } from '../pipeline/decode.ts';
import { embed, embedCredit } from '../pipeline/embed-stage.ts';
import { labelsAtTimes, type DatasetVideo } from './dataset.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { probe } from '../pipeline/probe.ts';
import { seededRandom } from '../core/seeded-random.ts';
import type { CropPolicy } from '../core/types.ts';
import type { Embedder } from '../models/embedder.ts';
import { featureDim, type FeatureSet } from '../models/motion.ts';
import { defaultEmbeddingPath, hashFile, headerMatches, readEmbeddingFile, writeEmbeddingFile } from '../models/embedding-file.ts';
import { describeView, randomView, viewFilters, type View } from './augment.ts';
import type { LabeledSequence } from './sequences.ts';

export interface EmbeddedVideo extends LabeledSequence {
  video: DatasetVideo;
  /** 'center' for the deterministic view, else the augmentation it was made with. */
  view: string;
  timestampsMs: number[];
}

export interface EmbedDatasetOptions {
  embedder: Embedder;
  classes: readonly string[];
  fps: number | null;
  crop: CropPolicy;
  /** Default 'appearance' (the embedding alone). */
  features?: FeatureSet;
  cacheDir: string;
  /** Augmented copies per video besides the center view (0 for evaluation). */
  copies?: number;
  /** Explicit views instead of random ones (test-time augmentation). */
  views?: View[];
  seed?: number;
  onProgress?: (msg: string) => void;
  /** A video with no decodable frame in some view is left out (nothing to train on or score);
   * called with its name and why. Default: a warning through onProgress. */
  onSkip?: (name: string, reason: string) => void;
}

const hashes = new Map<string, Promise<{ sha256: string; bytes: number }>>();

/** Embeddings of one video seen through one view (undefined = decode's own center crop), cached. */
export async function embedVideoView(
  path: string,
  view: View | undefined,
  o: Pick<EmbedDatasetOptions, 'embedder' | 'fps' | 'crop' | 'cacheDir' | 'features'>,
): Promise<{ timestampsMs: number[]; embeddings: Float32Array[]; cached: boolean }> {
  if (!hashes.has(path)) hashes.set(path, hashFile(path));
  const source = await hashes.get(path)!;
  const viewName = view ? describeView(view) : 'center';
  const precision = o.embedder.precision ?? 'fp32';
  const features = o.features ?? 'appearance';
  const file = defaultEmbeddingPath(o.cacheDir, source.sha256, o.embedder.id, o.fps, o.crop, precision, features).replace(/\.emb$/, `.${viewName}.emb`);
  try {
    const { header, embeddings } = await readEmbeddingFile(file);
    // An empty entry may come from a decoder that dropped the frame of a one-frame clip: decode again.
    if (
      embeddings.length > 0 &&
      headerMatches(header, { embedder: o.embedder.id, fps: o.fps, crop: o.crop, sha256: source.sha256, decoder: DECODE_REVISION, precision, features })
    ) {
      return { timestampsMs: header.timestampsMs, embeddings, cached: true };
    }
  } catch {
    // No usable cache entry: compute it.
  }
  const size = o.embedder.inputSize;
  const frames = await lastValueFrom(
    decodeThrough(
      path,
      { size, crop: o.crop, fps: o.fps ?? undefined, preFilters: view ? viewFilters(view, size) : undefined },
      embed(o.embedder, { features }),
      embedCredit(),
    ).pipe(toArray()),
  );
  const embeddings = frames.map((f) => f.embedding);
  const timestampsMs = frames.map((f) => f.timestampMs);
  await writeEmbeddingFile(
    file,
    {
      embedder: o.embedder.id,
      dim: featureDim(o.embedder.dim, features),
      fps: o.fps,
      crop: o.crop,
      decoder: DECODE_REVISION,
      source: { path, ...source },
      frames: frames.length,
      timestampsMs,
      augmentation: view ?? null,
      precision,
      features,
    },
    embeddings,
  );
  return { timestampsMs, embeddings, cached: false };
}

/**
 * Embeds each video through its views: the center view first, then `copies` random crops/flips
 * (seeded by the video's name, so the same run makes the same copies), or the given `views`.
 * Returns, per video, one labeled sequence per view.
 */
export async function embedDataset(videos: readonly DatasetVideo[], o: EmbedDatasetOptions): Promise<EmbeddedVideo[][]> {
  const classIndex = new Map(o.classes.map((c, i) => [c, i]));
  const out: EmbeddedVideo[][] = [];
  let done = 0;
  for (const video of videos) {
    const info = await probe(video.path);
    const rand = seededRandom((o.seed ?? 0) ^ hashString(video.name));
    const views: (View | undefined)[] = o.views ?? [undefined, ...Array.from({ length: o.copies ?? 0 }, () => randomView(rand))];
    const perView: EmbeddedVideo[] = [];
    let empty: string | undefined;
    for (const view of views) {
      const r = await embedVideoView(video.path, view, o);
      if (r.embeddings.length === 0) {
        empty = view ? describeView(view) : 'center';
        break;
      }
      const names = labelsAtTimes(video.labels, r.timestampsMs, info.fps);
      const labels = Int32Array.from(names, (n) => {
        const id = classIndex.get(n);
        if (id === undefined)
          throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${video.name}: label "${n}" is not one of the classes ${o.classes.join(', ')}`);
        return id;
      });
      perView.push({ name: video.name, video, view: view ? describeView(view) : 'center', timestampsMs: r.timestampsMs, embeddings: r.embeddings, labels });
    }
    done++;
    if (empty !== undefined) {
      const reason = `no decodable frame at ${o.fps ?? 'the source'} fps (view ${empty})`;
      if (o.onSkip) o.onSkip(video.name, reason);
      else o.onProgress?.(`warning: skipped ${video.name}: ${reason}`);
      continue;
    }
    out.push(perView);
    o.onProgress?.(`embedded ${done}/${videos.length} ${video.name} (${perView[0]!.labels.length} frames x ${views.length} view(s))`);
  }
  return out;
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
