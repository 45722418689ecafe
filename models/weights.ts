// Where an embedder's weights come from, in this order: an explicit models
// folder (--models-dir / FRAMEWISE_MODELS) holding <id>/model.json; the local cache
// (<cacheDir>/models/<id>/); the official TF-Hub URL, downloaded once into the cache.
// Pure tfjs has no file:// loader in Node, so a folder is read by folderIOHandler().
import * as tf from '@tensorflow/tfjs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { embedderInfo, type EmbedderInfo } from './registry.ts';

export type WeightsSource = 'models-dir' | 'cache' | 'download';

export interface WeightsLocation {
  id: string;
  /** Folder holding model.json and its weight files. */
  dir: string;
  source: WeightsSource;
  /**
   * `inputRange` for mobilenet.load(): undefined keeps the package's x*2/255-1 scaling (the graph
   * models in the models folder expect [-1, 1]); [0, 1] for TF-Hub downloads, which scale inside.
   * Read from the folder's framewise-weights.json when present.
   */
  inputRange?: [number, number];
}

/** Sidecar written next to downloaded weights (and honoured in any models folder). */
export const WEIGHTS_SIDECAR = 'framewise-weights.json';

interface Sidecar {
  id: string;
  url?: string;
  inputRange?: [number, number];
  downloadedAt?: string;
}

/** The subset of fetch() the downloader uses; injectable so tests run offline. */
export type FetchLike = (url: string) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface WeightsOptions {
  /** Folder holding <id>/model.json; relative paths resolve against the working directory. */
  modelsDir?: string;
  /** Cache root; weights live in <cacheDir>/models/<id>/. */
  cacheDir: string;
  /** Fetch from the official URL when no local copy exists (default true). */
  allowDownload?: boolean;
  fetch?: FetchLike;
  onProgress?: (msg: string) => void;
}

export function cachedModelDir(cacheDir: string, id: string): string {
  return join(resolve(cacheDir), 'models', id);
}

export interface LocalSearch {
  found?: WeightsLocation;
  /** Every folder looked at, in order, for messages and `framewise doctor`. */
  searched: { source: Exclude<WeightsSource, 'download'>; dir: string; present: boolean }[];
}

/** Looks for <id>/model.json in the models folder, then the cache; never touches the network. */
export async function findLocalWeights(id: string, options: Pick<WeightsOptions, 'modelsDir' | 'cacheDir'>): Promise<LocalSearch> {
  const candidates: LocalSearch['searched'] = [];
  if (options.modelsDir) candidates.push({ source: 'models-dir', dir: join(resolve(options.modelsDir), id), present: false });
  candidates.push({ source: 'cache', dir: cachedModelDir(options.cacheDir, id), present: false });
  let found: WeightsLocation | undefined;
  for (const c of candidates) {
    c.present = await isFile(join(c.dir, 'model.json'));
    if (c.present && !found) found = { id, dir: c.dir, source: c.source, ...(await readSidecar(c.dir)) };
  }
  return { found, searched: candidates };
}

/** Resolves (and if needed downloads) the weights of embedder `id`. */
export async function resolveWeights(id: string, options: WeightsOptions): Promise<WeightsLocation> {
  const info = embedderInfo(id);
  const local = await findLocalWeights(id, options);
  if (local.found) return local.found;
  const tried = local.searched.map((s) => s.dir).join(', ');
  const fix =
    `set FRAMEWISE_MODELS (or --models-dir) to a folder holding ${id}/model.json` +
    (options.allowDownload === false ? '' : ', or run once with internet access to download it');
  if (options.allowDownload === false) {
    throw new FramewiseError(ErrorCodes.MODEL_NOT_FOUND, `no weights for ${id} in ${tried} (downloads disabled): ${fix}`);
  }
  const fetchFn: FetchLike = options.fetch ?? ((url) => fetch(url));
  try {
    const dir = await downloadWeights(info, options.cacheDir, fetchFn, options.onProgress ?? (() => {}));
    return { id, dir, source: 'download', ...(await readSidecar(dir)) };
  } catch (err) {
    if (err instanceof FramewiseError && err.code === ErrorCodes.MODEL_INVALID) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new FramewiseError(
      ErrorCodes.MODEL_NOT_FOUND,
      `no weights for ${id} in ${tried}, and the download from ${info.officialUrl} failed (${reason}): ${fix}`,
      { cause: err },
    );
  }
}

/**
 * Downloads the TF-Hub graph model into <cacheDir>/models/<id>/ and returns that folder. Files go
 * to a private temporary folder renamed into place at the end, so an interrupted download never
 * looks like a cached model (and two processes downloading at once do not mix files).
 */
export async function downloadWeights(info: EmbedderInfo, cacheDir: string, fetchFn: FetchLike, onProgress: (msg: string) => void): Promise<string> {
  const final = cachedModelDir(cacheDir, info.id);
  const tmp = `${final}.partial-${process.pid}-${Date.now()}`;
  const base = info.officialUrl.replace(/\/+$/, '') + '/';
  const query = '?tfjs-format=file'; // what tfjs-converter appends for fromTFHub
  await mkdir(tmp, { recursive: true });
  try {
    onProgress(`downloading ${info.id} from ${info.officialUrl}`);
    const jsonBytes = await fetchBytes(fetchFn, `${base}model.json${query}`);
    let manifest: tf.io.WeightsManifestConfig;
    try {
      manifest = (JSON.parse(new TextDecoder().decode(jsonBytes)) as tf.io.ModelJSON).weightsManifest;
      if (!Array.isArray(manifest)) throw new Error('no weightsManifest');
    } catch (err) {
      throw new Error(`model.json from ${base} is not a TF.js model: ${(err as Error).message}`);
    }
    const paths = manifest.flatMap((g) => g.paths);
    let bytes = 0;
    for (const [i, p] of paths.entries()) {
      const file = safeJoin(tmp, p);
      const data = await fetchBytes(fetchFn, `${base}${p}${query}`);
      await writeFile(file, data);
      bytes += data.byteLength;
      onProgress(`downloading ${info.id}: ${i + 1}/${paths.length} weight files, ${(bytes / 1e6).toFixed(1)} MB`);
    }
    await writeFile(join(tmp, 'model.json'), jsonBytes);
    const sidecar: Sidecar = { id: info.id, url: info.officialUrl, inputRange: [0, 1], downloadedAt: new Date().toISOString() };
    await writeFile(join(tmp, WEIGHTS_SIDECAR), JSON.stringify(sidecar, null, 2) + '\n');
    try {
      await rename(tmp, final);
    } catch (err) {
      // Another process finished the same download first: keep its copy.
      if (!(await isFile(join(final, 'model.json')))) throw err;
      await rm(tmp, { recursive: true, force: true });
    }
    onProgress(`downloaded ${info.id} into ${final}`);
    return final;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** An IOHandler that reads model.json and its weight files from a local folder. */
export function folderIOHandler(dir: string): tf.io.IOHandler {
  return { load: () => loadFolderArtifacts(dir) };
}

export interface FolderReadOptions {
  /** The kind of TF.js model the folder must hold. Default 'graph-model' (what the embedder loads). */
  kind?: 'graph-model' | 'layers-model';
  /** Sees model.json's bytes, then each weight file's in manifest order (to hash them, say). */
  onBytes?: (bytes: Buffer) => void;
}

/**
 * Reads model.json and its weight files from a folder: the one reader of TF.js model folders
 * (embedder weights, the layers models the ONNX export reads, model bundles). Missing model.json
 * is E_MODEL_NOT_FOUND; anything unreadable, of the wrong kind, escaping the folder or of the wrong
 * size is E_MODEL_INVALID naming the file.
 */
export async function loadFolderArtifacts(dir: string, options: FolderReadOptions = {}): Promise<tf.io.ModelArtifacts> {
  const kind = options.kind ?? 'graph-model';
  const jsonPath = join(dir, 'model.json');
  let raw: Buffer;
  try {
    raw = await readFile(jsonPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new FramewiseError(ErrorCodes.MODEL_NOT_FOUND, `no model.json in ${dir}`, { cause: err });
    }
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `cannot read ${jsonPath}: ${(err as Error).message}`, { cause: err });
  }
  options.onBytes?.(raw);
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(raw.toString('utf8')) as tf.io.ModelJSON;
  } catch (err) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `${jsonPath} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (json === null || typeof json !== 'object' || json.modelTopology == null || !Array.isArray(json.weightsManifest)) {
    const what = kind === 'layers-model' ? 'a tfjs layers model' : 'a TF.js model';
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `${jsonPath} is not ${what} (modelTopology and weightsManifest expected)`);
  }
  const topology = json.modelTopology as { node?: unknown };
  if (kind === 'graph-model' && json.format !== 'graph-model' && !Array.isArray(topology.node)) {
    throw new FramewiseError(
      ErrorCodes.MODEL_INVALID,
      `${jsonPath} is not a graph model (format "${json.format}"); the embedder loads graph models (layers/ holds the trainable variant)`,
    );
  }
  return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const specs = manifest.flatMap((g) => g.weights);
    const buffers: ArrayBuffer[] = [];
    let total = 0;
    for (const group of manifest) {
      for (const p of group.paths) {
        let b: Buffer;
        try {
          b = await readFile(safeJoin(dir, p));
        } catch (err) {
          if (err instanceof FramewiseError) throw err;
          throw new FramewiseError(ErrorCodes.MODEL_INVALID, `weight file "${p}" listed in ${jsonPath} cannot be read: ${(err as Error).message}`, {
            cause: err,
          });
        }
        options.onBytes?.(b);
        // A Buffer may be a view into Node's shared pool: copy out exactly its bytes.
        buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
        total += b.byteLength;
      }
    }
    const expected = expectedWeightBytes(specs);
    if (expected !== undefined && total !== expected) {
      throw new FramewiseError(
        ErrorCodes.MODEL_INVALID,
        `weight files in ${dir} hold ${total} bytes but ${jsonPath} describes ${expected} (truncated or mismatched shard)`,
      );
    }
    return [specs, buffers];
  });
}

/** Bytes the manifest's weights occupy, or undefined when a dtype has no fixed size (strings). */
export function expectedWeightBytes(specs: tf.io.WeightsManifestEntry[]): number | undefined {
  const size: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };
  let total = 0;
  for (const s of specs) {
    const per = size[s.quantization?.dtype ?? s.dtype];
    if (per === undefined) return undefined;
    total += s.shape.reduce((a, b) => a * b, 1) * per;
  }
  return total;
}

async function fetchBytes(fetchFn: FetchLike, url: string): Promise<Uint8Array> {
  const res = await fetchFn(url);
  if (!res.ok) throw new Error(`HTTP ${res.status} for ${url}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Joins a manifest path onto a folder, refusing paths that would escape it. */
function safeJoin(dir: string, p: string): string {
  const n = normalize(p);
  if (isAbsolute(n) || n.startsWith('..')) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `weight path "${p}" in ${dir}/model.json leaves the model folder`);
  }
  return join(dir, n);
}

async function readSidecar(dir: string): Promise<Pick<WeightsLocation, 'inputRange'>> {
  const path = join(dir, WEIGHTS_SIDECAR);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return {};
  }
  try {
    const s = JSON.parse(text) as Sidecar;
    const r = s.inputRange;
    if (r === undefined) return {};
    if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => typeof x === 'number' && Number.isFinite(x)) || r[0] >= r[1]) {
      throw new Error('inputRange must be [min, max]');
    }
    return { inputRange: [r[0], r[1]] };
  } catch (err) {
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `${path} is malformed: ${(err as Error).message}`, { cause: err });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
