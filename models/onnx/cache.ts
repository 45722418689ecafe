// A verified ONNX export on disk: `<cache>/onnx/<id>.onnx` plus `<id>.onnx.json`, a sidecar that
// records what was verified (hash of the ONNX bytes, hash of the source weights, exporter version,
// the measured difference). A file whose sidecar vouches for exactly these bytes and these weights
// is used without rerunning tfjs, which makes "export on first use" cost ~nothing the second time.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { EXPORTER_VERSION, exportLayersModel, type OnnxExport } from './export.ts';
import { loadLayersModel, readLayersArtifacts, type LayersArtifacts } from './layers-source.ts';
import { decodeModelSummary } from './proto.ts';
import { assertVerified, verifyOnnx, type VerifyResult } from './verify.ts';

export interface Sidecar {
  id: string;
  exporterVersion: string;
  /** sha256 of the layers model (model.json + shards) the file was made from. */
  sourceSha256: string;
  /** sha256 of the ONNX bytes this record speaks for. */
  onnxSha256: string;
  dim: number;
  classes: number;
  macs: { embedding: number; head: number };
  verification: VerifyResult;
  createdAt: string;
}

export function onnxCachePath(id: string, cacheDir: string = DEFAULTS.cacheDir): string {
  return join(cacheDir, 'onnx', `${id}.onnx`);
}

export const sidecarPath = (onnxPath: string): string => `${onnxPath}.json`;

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function readSidecar(path: string): Promise<Sidecar | undefined> {
  try {
    return JSON.parse(await readFile(sidecarPath(path), 'utf8')) as Sidecar;
  } catch {
    return undefined; // absent or unreadable: the file gets verified again
  }
}

/** Writes via a temporary name + rename so a crash never leaves half a model where a whole one is expected. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export interface ExportOptions {
  id: string;
  modelsDir?: string;
  imagesDir?: string;
  /** Called before the layers model is loaded into tfjs (e.g. ensureBackend); not called when no tfjs work is needed. */
  beforeTfjs?: () => Promise<void>;
}

export interface VerifiedExport {
  export: OnnxExport;
  source: LayersArtifacts;
  verification: VerifyResult;
}

/** Exports `id` from its layers model and verifies it; MODEL_INVALID if the export does not match tfjs. */
export async function exportVerified(opts: ExportOptions): Promise<VerifiedExport> {
  const source = await readLayersArtifacts(opts.id, opts.modelsDir);
  await opts.beforeTfjs?.();
  const model = await loadLayersModel(source);
  try {
    const ex = exportLayersModel(opts.id, model, { 'framewise.source_sha256': source.sourceHash });
    const verification = await verifyOnnx({ id: opts.id, bytes: ex.bytes, model, modelsDir: opts.modelsDir, imagesDir: opts.imagesDir });
    assertVerified(verification, '(fresh export)');
    return { export: ex, source, verification };
  } finally {
    model.dispose();
  }
}

/** Writes an export and its sidecar. */
export async function writeExport(path: string, v: VerifiedExport): Promise<Sidecar> {
  const sidecar: Sidecar = {
    id: v.export.id,
    exporterVersion: EXPORTER_VERSION,
    sourceSha256: v.source.sourceHash,
    onnxSha256: sha256(v.export.bytes),
    dim: v.export.dim,
    classes: v.export.classes,
    macs: v.export.macs,
    verification: v.verification,
    createdAt: new Date().toISOString(),
  };
  try {
    await writeAtomic(path, v.export.bytes);
    await writeAtomic(sidecarPath(path), JSON.stringify(sidecar, null, 2) + '\n');
  } catch (err) {
    throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot write ONNX export to ${path}: ${(err as Error).message}`, { cause: err });
  }
  return sidecar;
}

export interface EnsureOptions extends ExportOptions {
  cacheDir?: string;
  /** An ONNX file to use instead of the cache; it is verified, never overwritten. */
  file?: string;
  log?: (line: string) => void;
}

export interface ReadyOnnx {
  path: string;
  bytes: Uint8Array;
  sidecar: Sidecar;
  /** How the file became trusted: made now, vouched for by its sidecar, or verified now. */
  how: 'exported' | 'sidecar' | 'verified';
}

/**
 * A verified ONNX file for `id`: the given file or the cached one, exporting into the cache on first
 * use. A file that fails verification is refused (MODEL_INVALID), never silently replaced; a cached
 * file whose sidecar shows it was made from other weights or by an older exporter is redone.
 */
export async function ensureOnnx(opts: EnsureOptions): Promise<ReadyOnnx> {
  const log = opts.log ?? (() => {});
  const path = opts.file ?? onnxCachePath(opts.id, opts.cacheDir);
  const source = await readLayersArtifacts(opts.id, opts.modelsDir);

  let bytes: Uint8Array | undefined;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    if (opts.file) throw new FramewiseError(ErrorCodes.MODEL_NOT_FOUND, `ONNX file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }

  if (bytes) {
    const sidecar = await readSidecar(path);
    const digest = sha256(bytes);
    const vouched = sidecar?.onnxSha256 === digest && sidecar.id === opts.id && sidecar.verification?.ok === true;
    if (vouched && sidecar.sourceSha256 === source.sourceHash && sidecar.exporterVersion === EXPORTER_VERSION) {
      return { path, bytes, sidecar, how: 'sidecar' };
    }
    if (vouched && !opts.file) {
      log(`framewise: cached ONNX export of ${opts.id} is stale (other weights or exporter), exporting again`);
    } else {
      // Unknown provenance (no sidecar, or bytes changed since it was written): check the numbers.
      await opts.beforeTfjs?.();
      const model = await loadLayersModel(source);
      let verification: VerifyResult;
      try {
        verification = await verifyOnnx({ id: opts.id, bytes, model, modelsDir: opts.modelsDir, imagesDir: opts.imagesDir });
      } finally {
        model.dispose();
      }
      assertVerified(verification, path);
      const m = decodeModelSummary(bytes).metadata;
      const meta = {
        dim: Number(m['framewise.embedding_dim'] ?? 0),
        classes: Number(m['framewise.classes'] ?? 0),
        macs: { embedding: Number(m['framewise.macs_embedding'] ?? 0), head: Number(m['framewise.macs_head'] ?? 0) },
      };
      const fresh: Sidecar = {
        id: opts.id,
        exporterVersion: EXPORTER_VERSION,
        sourceSha256: source.sourceHash,
        onnxSha256: digest,
        ...meta,
        verification,
        createdAt: new Date().toISOString(),
      };
      await writeAtomic(sidecarPath(path), JSON.stringify(fresh, null, 2) + '\n').catch(() => {}); // read-only folder: verify again next time
      return { path, bytes, sidecar: fresh, how: 'verified' };
    }
  }

  log(`framewise: exporting ${opts.id} to ONNX (${path})`);
  const v = await exportVerified(opts);
  const sidecar = await writeExport(path, v);
  return { path, bytes: v.export.bytes, sidecar, how: 'exported' };
}
