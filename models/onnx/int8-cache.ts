// The int8 export on disk: `<cache>/onnx/<id>.int8-<calibration fingerprint>.onnx`, next to the
// fp32 `<id>.onnx`, with a sidecar `.json` that extends the fp32 one with what int8 needs trusted:
// the calibration (fingerprint, frames, sources), the agreement with fp32 (int8-agreement.ts) and
// the speed of both measured at export on this CPU (what `--precision auto` decides by). A file
// whose sidecar vouches for its bytes is used as is; otherwise its agreement is measured again and
// it is refused below the thresholds.
import * as ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { ensureOnnx, onnxCachePath, sha256, sidecarPath, type Sidecar } from './cache.ts';
import { calibrate } from './calibrate.ts';
import { sampleFrames, type FrameSample } from './calibration-frames.ts';
import { embedderInfo } from '../registry.ts';
import { EXPORTER_VERSION, exportLayersModel } from './export.ts';
import { assertAgreement, describeAgreement, measureAgreement, type Int8Agreement } from './int8-agreement.ts';
import { loadLayersModel, readLayersArtifacts, resolveModelsDir } from './layers-source.ts';
import { encodeModel } from './proto.ts';
import { foldBatchNorms, QUANTIZER_VERSION, quantizationTargets, quantizeQdq } from './quantize.ts';
import { defaultImagesDir, openSession, runSession, verificationFrames, type RgbFrame } from './verify.ts';

export interface Int8Speed {
  /** os.cpus()[0].model of the machine that measured it. */
  cpu: string;
  /**
   * Frames per CPU-second of one single-threaded session on batches of 8 (the process's CPU time,
   * not the wall clock: on a shared machine the wall clock measures the neighbours), medians of
   * interleaved rounds.
   */
  fp32Fps: number;
  int8Fps: number;
}

export interface Int8Sidecar extends Sidecar {
  precision: 'int8';
  /** sha256 of the fp32 ONNX bytes the int8 graph was made from. */
  fp32Sha256: string;
  calibration: { fingerprint: string; frames: number; checkFrames: number; sources: string[]; files: number };
  /** 7-bit weights (x86 without VNNI). */
  reduceRange: boolean;
  /** QUANTIZER_VERSION of the rewrite that made the file (absent: version 1). */
  quantizerVersion?: number;
  agreement: Int8Agreement;
  speed: Int8Speed;
}

/** A cached export made by this exporter and this quantizer (older ones are made again, not used). */
const isCurrent = (s: Int8Sidecar): boolean => s.exporterVersion === EXPORTER_VERSION && (s.quantizerVersion ?? 1) === QUANTIZER_VERSION;

export const int8CachePath = (id: string, fingerprint: string, cacheDir: string = DEFAULTS.cacheDir): string =>
  join(cacheDir, 'onnx', `${id}.int8-${fingerprint.slice(0, 12)}.onnx`);

/** x86 without a VNNI dot-product instruction: full-range u8 x s8 products can saturate (ONNX Runtime's guide). */
export function needsReduceRange(): boolean {
  if (process.arch !== 'x64') return false;
  try {
    return !/\b(avx512_vnni|avx_vnni|avx512vnni)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return false; // not Linux: assume a current CPU
  }
}

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function readInt8Sidecar(path: string): Promise<Int8Sidecar | undefined> {
  try {
    const s = JSON.parse(await readFile(sidecarPath(path), 'utf8')) as Int8Sidecar;
    return s.precision === 'int8' ? s : undefined;
  } catch {
    return undefined;
  }
}

export interface Int8Options {
  id: string;
  modelsDir?: string;
  cacheDir?: string;
  /** Photos for the ImageNet top-1 check. Default <models-dir>/../data/images. */
  imagesDir?: string;
  /** Explicit calibration sources (`--calibrate DIR`): the export made from exactly these frames. */
  calibrate?: readonly string[];
  /** The run's own inputs: calibrated on when no int8 export of `id` exists yet. */
  runInputs?: readonly string[];
  /** An int8 file to use (verified unless its sidecar vouches for it); never overwritten. */
  file?: string;
  /** Frames sampled for calibration and checking together. Default 96. */
  maxFrames?: number;
  log?: (line: string) => void;
  beforeTfjs?: () => Promise<void>;
}

export interface ReadyInt8 {
  path: string;
  bytes: Uint8Array;
  sidecar: Int8Sidecar;
  how: 'exported' | 'sidecar' | 'verified';
}

/** The verified int8 export in the cache with the newest date, if any (any calibration). */
export async function findInt8(id: string, cacheDir: string = DEFAULTS.cacheDir, modelsDir?: string): Promise<ReadyInt8 | undefined> {
  const dir = join(cacheDir, 'onnx');
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(`${id}.int8-`) && n.endsWith('.onnx'));
  let sourceHash: string | undefined;
  try {
    sourceHash = (await readLayersArtifacts(id, modelsDir)).sourceHash;
  } catch {
    // no layers model here: a vouched file still holds
  }
  const found: ReadyInt8[] = [];
  for (const n of names) {
    const path = join(dir, n);
    const sidecar = await readInt8Sidecar(path);
    if (!sidecar?.agreement?.ok || !isCurrent(sidecar) || (sourceHash && sidecar.sourceSha256 !== sourceHash)) continue;
    const bytes = new Uint8Array(await readFile(path).catch(() => new Uint8Array()));
    if (sha256(bytes) === sidecar.onnxSha256) found.push({ path, bytes, sidecar, how: 'sidecar' });
  }
  return found.sort((a, b) => b.sidecar.createdAt.localeCompare(a.sidecar.createdAt))[0];
}

/** Frames per CPU-second of both sessions, interleaved rounds, medians: the speed `auto` compares. */
async function measureSpeed(fp32: ort.InferenceSession, int8: ort.InferenceSession, frames: readonly RgbFrame[], size: number, rounds = 3): Promise<Int8Speed> {
  const batch = Array.from({ length: 8 }, (_, i) => frames[i % frames.length]!);
  const fps: Record<'fp32' | 'int8', number[]> = { fp32: [], int8: [] };
  for (const s of [fp32, int8]) await runSession(s, batch, size); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [name, s] of [
      ['fp32', fp32],
      ['int8', int8],
    ] as const) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      let n = 0;
      while (performance.now() - t0 < 700 || n < 16) {
        await runSession(s, batch, size);
        n += batch.length;
      }
      const c = process.cpuUsage(c0);
      fps[name].push(n / ((c.user + c.system) / 1e6));
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  return { cpu: cpus()[0]?.model.trim() ?? 'unknown', fp32Fps: median(fps.fp32), int8Fps: median(fps.int8) };
}

function defaultSources(opts: Int8Options): string[] {
  if (opts.calibrate?.length) return [...opts.calibrate];
  if (opts.runInputs?.length) return [...opts.runInputs];
  // The project's shared data next to the shared models (videos and photos), when it is there.
  return [join(resolveModelsDir(opts.modelsDir), '..', 'data')];
}

/**
 * Makes the int8 export: fp32 graph (framewise's exporter) -> BatchNorm folded -> calibrated on half
 * of the sampled frames -> QDQ -> agreement with the fp32 file on the other half and the photos
 * (refused below the thresholds) -> speed of both -> written with its sidecar.
 */
export async function makeInt8(opts: Int8Options & { sample?: FrameSample }): Promise<ReadyInt8> {
  const log = opts.log ?? (() => {});
  const fp32 = await ensureOnnx({
    id: opts.id,
    modelsDir: opts.modelsDir,
    cacheDir: opts.cacheDir,
    imagesDir: opts.imagesDir,
    log,
    beforeTfjs: opts.beforeTfjs,
  });
  const source = await readLayersArtifacts(opts.id, opts.modelsDir);
  await opts.beforeTfjs?.();
  const model = await loadLayersModel(source);
  let ex;
  try {
    ex = exportLayersModel(opts.id, model, { 'framewise.source_sha256': source.sourceHash });
  } finally {
    model.dispose();
  }
  const size = ex.inputSize;
  const sources = defaultSources(opts);
  const sample = opts.sample ?? (await sampleFrames({ sources, size, maxFrames: opts.maxFrames ?? 96 }));
  log(`framewise: calibrating int8 ${opts.id} on ${sample.calibration.length} frames from ${sample.files.length} file(s) in ${sources.join(', ')}`);
  const folded = foldBatchNorms(ex.model);
  const targets = quantizationTargets(folded);
  const { ranges, means } = await calibrate({ folded, targets, frames: sample.calibration, inputSize: size });
  const reduceRange = needsReduceRange();
  const bytes = encodeModel(quantizeQdq(folded, { ranges, inputMeans: means, reduceRange }));
  const photos = await verificationFrames(opts.imagesDir ?? defaultImagesDir(opts.modelsDir), size);
  const fs = await openSession(fp32.bytes, 1, `ONNX file ${fp32.path}`);
  const qs = await openSession(bytes, 1, 'the int8 export');
  let agreement: Int8Agreement;
  let speed: Int8Speed;
  try {
    agreement = await measureAgreement(fs, qs, sample.check, photos.inputs === 'photos' ? photos.frames : [], size);
    assertAgreement(agreement, opts.id, '(fresh export)');
    speed = await measureSpeed(fs, qs, sample.check, size);
  } finally {
    await fs.release();
    await qs.release();
  }
  const path = opts.file ?? int8CachePath(opts.id, sample.fingerprint, opts.cacheDir);
  const sidecar: Int8Sidecar = {
    id: opts.id,
    exporterVersion: EXPORTER_VERSION,
    sourceSha256: source.sourceHash,
    onnxSha256: sha256(bytes),
    dim: ex.dim,
    classes: ex.classes,
    macs: ex.macs,
    // The fp32 record's verification fields, so the generic loader (cache.ts) trusts the file by its sidecar.
    verification: { ...fp32.sidecar.verification, ok: true, id: opts.id },
    createdAt: new Date().toISOString(),
    precision: 'int8',
    fp32Sha256: sha256(fp32.bytes),
    calibration: { fingerprint: sample.fingerprint, frames: sample.calibration.length, checkFrames: sample.check.length, sources, files: sample.files.length },
    reduceRange,
    quantizerVersion: QUANTIZER_VERSION,
    agreement,
    speed,
  };
  try {
    await writeAtomic(path, bytes);
    await writeAtomic(sidecarPath(path), JSON.stringify(sidecar, null, 2) + '\n');
  } catch (err) {
    throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot write int8 export to ${path}: ${(err as Error).message}`, { cause: err });
  }
  log(
    `framewise: int8 ${opts.id} -> ${path}: ${describeAgreement(agreement)}; ${speed.int8Fps.toFixed(0)} vs fp32 ${speed.fp32Fps.toFixed(0)} frames per CPU-second on one thread (${speed.cpu})`,
  );
  return { path, bytes, sidecar, how: 'exported' };
}

/** Measures a file's agreement again (no or stale sidecar); refuses it below the thresholds. */
async function verifyInt8File(opts: Int8Options, path: string, bytes: Uint8Array, old: Int8Sidecar | undefined): Promise<ReadyInt8> {
  const fp32 = await ensureOnnx({
    id: opts.id,
    modelsDir: opts.modelsDir,
    cacheDir: opts.cacheDir,
    imagesDir: opts.imagesDir,
    log: opts.log,
    beforeTfjs: opts.beforeTfjs,
  });
  const size = embedderInfo(opts.id).inputSize;
  const sources = old?.calibration.sources ?? opts.calibrate ?? [];
  // The check half of the recorded calibration sample (disjoint from what was calibrated on).
  const sample = sources.length ? await sampleFrames({ sources, size, maxFrames: opts.maxFrames ?? 96 }).catch(() => undefined) : undefined;
  const photos = await verificationFrames(opts.imagesDir ?? defaultImagesDir(opts.modelsDir), size);
  const fs = await openSession(fp32.bytes, 1, `ONNX file ${fp32.path}`);
  let qs: ort.InferenceSession;
  try {
    qs = await openSession(bytes, 1, `int8 ONNX file ${path}`);
  } catch (err) {
    await fs.release();
    throw err;
  }
  try {
    const check = sample?.check ?? photos.frames;
    const agreement = await measureAgreement(fs, qs, check, photos.inputs === 'photos' ? photos.frames : [], size);
    assertAgreement(agreement, opts.id, path);
    const speed = old?.speed ?? (await measureSpeed(fs, qs, check, size));
    const source = await readLayersArtifacts(opts.id, opts.modelsDir);
    const sidecar: Int8Sidecar = {
      ...(old ?? ({} as Int8Sidecar)),
      ...fp32.sidecar,
      createdAt: new Date().toISOString(),
      sourceSha256: source.sourceHash,
      onnxSha256: sha256(bytes),
      precision: 'int8',
      fp32Sha256: sha256(fp32.bytes),
      calibration: old?.calibration ?? { fingerprint: 'unknown', frames: 0, checkFrames: check.length, sources: [...sources], files: 0 },
      reduceRange: old?.reduceRange ?? needsReduceRange(),
      agreement,
      speed,
    };
    await writeAtomic(sidecarPath(path), JSON.stringify(sidecar, null, 2) + '\n').catch(() => {}); // read-only: verified again next time
    return { path, bytes, sidecar, how: 'verified' };
  } finally {
    await fs.release();
    await qs.release();
  }
}

/**
 * The int8 file to run for `opts.id`: the given file, the export calibrated on `--calibrate`'s
 * frames, else the newest verified one in the cache, else one made now from the run's inputs.
 */
export async function ensureInt8(opts: Int8Options): Promise<ReadyInt8> {
  const cacheDir = opts.cacheDir ?? DEFAULTS.cacheDir;
  let path = opts.file;
  let sample: FrameSample | undefined;
  if (!path && opts.calibrate?.length) {
    sample = await sampleFrames({ sources: opts.calibrate, size: embedderInfo(opts.id).inputSize, maxFrames: opts.maxFrames ?? 96 });
    path = int8CachePath(opts.id, sample.fingerprint, cacheDir);
  }
  if (!path) {
    const found = await findInt8(opts.id, cacheDir, opts.modelsDir);
    if (found) return found;
  }
  if (path) {
    let bytes: Uint8Array | undefined;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      if (opts.file) throw new FramewiseError(ErrorCodes.MODEL_NOT_FOUND, `int8 ONNX file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
    if (bytes) {
      const sidecar = await readInt8Sidecar(path);
      // A file the user names is judged by its agreement; a cached one made by an older quantizer is remade.
      const current = sidecar && (opts.file ? sidecar.exporterVersion === EXPORTER_VERSION : isCurrent(sidecar));
      if (sidecar?.onnxSha256 === sha256(bytes) && sidecar.agreement?.ok && current && sidecar.id === opts.id) {
        return { path, bytes, sidecar, how: 'sidecar' };
      }
      if (!opts.file && sidecar && !current) {
        opts.log?.(`framewise: int8 file ${basename(path)} was made by an older exporter or quantizer: making it again`);
        return makeInt8({ ...opts, cacheDir, ...(sample ? { sample } : {}) });
      }
      opts.log?.(`framewise: int8 file ${basename(path)} has no record vouching for these bytes: measuring its agreement with fp32`);
      return verifyInt8File(opts, path, bytes, sidecar);
    }
  }
  opts.log?.(`framewise: no int8 export of ${opts.id} yet: making one (${onnxCachePath(opts.id, cacheDir).replace(/\.onnx$/, '.int8-*.onnx')})`);
  return makeInt8({ ...opts, cacheDir, ...(sample ? { sample } : {}) });
}
