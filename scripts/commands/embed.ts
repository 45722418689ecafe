// `framewise embed <video>`: runs a video through the embedder once and keeps the result in an
// embedding file (models/embedding-file.ts), so training can reuse it for every epoch and run.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, extname, join, sep } from 'node:path';
import type { Observable, Subscription } from 'rxjs';
import { loadEmbeddingEngine, resolvePrecision } from '../../models/engine-choice.ts';
import { defaultEmbeddingPath, hashFile, matchingEmbeddingFile, writeEmbeddingFile } from '../../models/embedding-file.ts';
import { EMBEDDER_IDS, embedderInfo } from '../../models/registry.ts';
import { FEATURE_SETS, featureDim, type FeatureSet } from '../../models/motion.ts';
import { DECODE_REVISION, decodeThrough } from '../../pipeline/decode.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { embed, embedCredit } from '../../pipeline/embed-stage.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { assertLocalFile, isUrl, probe } from '../../pipeline/probe.ts';
import type { CropPolicy, EmbeddedFrame } from '../../core/types.ts';
import { bool, modelOptions, num, str, type CommandSpec, modelRequest, cacheDirOption, fpsValue, precisionOptions } from '../command.ts';

export const command: CommandSpec = {
  name: 'embed',
  summary: 'Embed every frame of a video with a MobileNet and write an embedding file for training.',
  args: '<video>',
  minArgs: 1,
  options: {
    embedder: { type: 'string', valueName: 'ID', description: `embedder: ${EMBEDDER_IDS.join(', ')}`, default: DEFAULTS.embedder },
    fps: { type: 'string', valueName: 'N', description: 'frames per second to sample, or "source" for the video\'s own rate', default: String(DEFAULTS.fps) },
    crop: { type: 'string', valueName: 'POLICY', description: 'center (scale the short side, crop the middle) or pad', default: DEFAULTS.crop },
    features: {
      type: 'string',
      valueName: 'SET',
      description: "'appearance' (the embedding) or 'appearance+motion' (plus the motion stream)",
      default: DEFAULTS.features,
    },
    out: {
      type: 'string',
      valueName: 'FILE|DIR',
      defaultHelp: '<cache-dir>/embeddings/<sha256 prefix>.<embedder>.<fps>.<crop>.emb',
      description: 'output file, or a folder (an existing one, or a path ending in /) to write <video name>.emb in, as label --out does',
    },
    batch: { type: 'string', valueName: 'N', description: 'frames per embedder call', default: String(DEFAULTS.embedBatch) },
    force: { type: 'boolean', description: 'recompute even when a matching embedding file exists' },
    'cache-dir': cacheDirOption,
    ...modelOptions,
  },
  async run(ctx) {
    const { positionals, values, stdout, stderr } = ctx;
    if (positionals.length > 1) throw usage(`framewise embed takes one video, got ${positionals.length}`);
    const input = positionals[0];
    const info = embedderInfo(str(values, 'embedder') ?? DEFAULTS.embedder);
    const fps = fpsValue(values) ?? null;
    const crop = str(values, 'crop') ?? DEFAULTS.crop;
    if (crop !== 'center' && crop !== 'pad') throw usage(`--crop must be center or pad, got "${crop}"`);
    const features = (str(values, 'features') ?? DEFAULTS.features) as FeatureSet;
    if (!FEATURE_SETS.includes(features)) throw usage(`--features must be ${FEATURE_SETS.join(' or ')}, got "${features}"`);
    const batchSize = num(values, 'batch', 1, 1024)!;
    if (!Number.isInteger(batchSize)) throw usage(`--batch must be an integer, got ${batchSize}`);
    const request = modelRequest(ctx);
    const cacheDir = request.cacheDir;
    const log = (line: string) => stderr.write(`framewise embed: ${line}\n`);

    const engineRequest = request.engine;
    const { precision: precisionRequest, ...calibration } = precisionOptions(ctx, input ? [input] : []);
    // The cache key holds the precision, so auto is resolved here (from the int8 export's record) before the model loads.
    const precision = engineRequest === 'tfjs' ? 'fp32' : await resolvePrecision(info.id, precisionRequest, { cacheDir, modelsDir: request.modelsDir });
    const source = await identify(input);
    let out = str(values, 'out');
    if (out && (out.endsWith('/') || out.endsWith(sep) || isDirectory(out))) {
      if (input === '-') throw usage('reading stdin into a folder needs a file name: --out FILE');
      await mkdir(out, { recursive: true });
      out = join(out, `${basename(input, extname(input)) || 'video'}.emb`);
    }
    if (!out) {
      if (input === '-') throw usage('reading stdin needs --out FILE (stdin has no identity to name a cache file by)');
      out = defaultEmbeddingPath(cacheDir, source.sha256, info.id, fps, crop, precision, features);
    }
    if (
      !bool(values, 'force') &&
      input !== '-' &&
      (await matchingEmbeddingFile(out, { embedder: info.id, fps, crop, sha256: source.sha256, decoder: DECODE_REVISION, precision, features }))
    ) {
      log(`up to date: ${out}`);
      stdout.write(out + '\n');
      return 0;
    }

    // Fail on a missing file, a non-video or an audio-only input before paying for the model load.
    if (input !== '-') await probe(input);
    const embedder = await loadEmbeddingEngine({
      ...request,
      id: info.id,
      // The request itself: auto decides as resolvePrecision did (same record), and says why.
      precision: precisionRequest,
      ...calibration,
      batchSize,
      onProgress: log,
    });
    const embeddings: Float32Array[] = [];
    const timestampsMs: number[] = [];
    const started = performance.now();
    let lastReport = started;
    try {
      // Credit-driven decode: a few batches between ffmpeg and the embedder's output, so memory
      // stays bounded however slow the embedder is, and one batch fills while the others run.
      const embedded = decodeThrough(
        input,
        { size: embedder.inputSize, crop, ...(fps !== null ? { fps } : {}), streamId: basename(input) },
        embed(embedder, { batchSize, features }),
        embedCredit({ batchSize }),
      );
      await drain(embedded, (f) => {
        if (f.index !== embeddings.length) {
          throw new FramewiseError(ErrorCodes.DECODE_FAILED, `frame ${f.index} arrived where frame ${embeddings.length} was expected`);
        }
        embeddings.push(f.embedding);
        timestampsMs.push(f.timestampMs);
        const now = performance.now();
        if (now - lastReport > 2000) {
          lastReport = now;
          log(`${embeddings.length} frames, ${(embeddings.length / ((now - started) / 1000)).toFixed(1)} frames/s`);
        }
      });
    } finally {
      embedder.dispose();
    }
    const seconds = (performance.now() - started) / 1000;
    await writeEmbeddingFile(
      out,
      {
        embedder: info.id,
        dim: featureDim(info.dim, features),
        fps,
        crop: crop as CropPolicy,
        decoder: DECODE_REVISION,
        source,
        frames: embeddings.length,
        timestampsMs,
        precision: embedder.precision,
        features,
      },
      embeddings,
    );
    log(`${embeddings.length} frames in ${seconds.toFixed(1)} s (${(embeddings.length / Math.max(seconds, 1e-9)).toFixed(1)} frames/s) -> ${out}`);
    stdout.write(out + '\n');
    return 0;
  },
};

/**
 * The source's identity for the header and the cache name: a local file by the sha256 of its
 * bytes; a URL by the sha256 of the URL text (its bytes are not at hand before decoding); stdin
 * has none (empty hash, and --out is required).
 */
async function identify(input: string): Promise<{ path: string; sha256: string; bytes: number }> {
  if (input === '-') return { path: '-', sha256: '', bytes: 0 };
  if (isUrl(input)) return { path: input, sha256: createHash('sha256').update(input).digest('hex'), bytes: 0 };
  assertLocalFile(input);
  return { path: input, ...(await hashFile(input)) };
}

function drain<T extends EmbeddedFrame>(frames: Observable<T>, each: (f: T) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed = false;
    let sub: Subscription | undefined = undefined;
    sub = frames.subscribe({
      next: (f) => {
        if (failed) return;
        try {
          each(f);
        } catch (err) {
          failed = true;
          reject(err);
          sub?.unsubscribe(); // stops decode and embedding (kills ffmpeg)
        }
      },
      error: reject,
      complete: resolve,
    });
    if (failed) sub.unsubscribe();
  });
}

function usage(msg: string): FramewiseError {
  return new FramewiseError(ErrorCodes.USAGE, msg);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
