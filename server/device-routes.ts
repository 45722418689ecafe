// The files a browser needs to label on the device, served over HTTP (the socket carries no frame
// then): the embedder's graph model exactly as the server loads it, the current bundle (stock
// layers model + framewise.json), and the .wasm binaries of tfjs' WASM backend.
//
//   GET /api/device                    what to load: embedder (id, version, alpha, input range,
//                                      URL), the bundle's URLs (null before a model exists), wasm URL
//   GET /api/device/embedder/<file>    model.json and its weight shards
//   GET /api/device/bundle/<file>      model.json, weights.bin, framewise.json of the current model
//   GET /api/device/wasm/<file>        tfjs-backend-wasm*.wasm
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { embedderInfo } from '../models/registry.ts';
import { BUNDLE_FILES } from '../models/recurrent/bundle.ts';
import { resolveWeights, type WeightsLocation } from '../models/weights.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { json, sendFile } from './http.ts';
import type { LiveModel } from './live-model.ts';

export interface DeviceRoutesConfig {
  live: LiveModel;
  modelsDir: string | undefined;
  cacheDir: string;
}

export interface DeviceInfo {
  embedder: { id: string; version: 1 | 2; alpha: number; inputSize: number; dim: number; inputRange: [number, number] | null; modelUrl: string };
  bundle: { modelUrl: string; metaUrl: string } | null;
  /** Folder URL holding the tfjs-backend-wasm .wasm files (for setWasmPaths). */
  wasmUrl: string;
}

const WASM_FILES = new Set(['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']);
const BUNDLE_NAMES = new Set<string>(Object.values(BUNDLE_FILES));

/** The folder of @tensorflow/tfjs-backend-wasm's dist (its .wasm files sit beside the entry). */
function wasmDir(): string {
  return dirname(fileURLToPath(import.meta.resolve('@tensorflow/tfjs-backend-wasm')));
}

/** Handles /api/device*; false when the path is not one of these routes. */
export function deviceRoutes(c: DeviceRoutesConfig): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean> {
  let weights: Promise<WeightsLocation> | undefined;
  const weightsDir = () =>
    (weights ??= resolveWeights(c.live.embedder.id, { modelsDir: c.modelsDir, cacheDir: c.cacheDir, allowDownload: false }).catch((err) => {
      weights = undefined;
      throw err;
    }));
  return async (req, res, path) => {
    if (path !== '/api/device' && !path.startsWith('/api/device/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new FramewiseError(ErrorCodes.USAGE, `${req.method} is not supported here`);
    const parts = path.split('/').filter(Boolean); // ['api', 'device', kind, file]
    if (parts.length === 2) {
      const id = c.live.embedder.id;
      const info = embedderInfo(id);
      const w = await weightsDir();
      const body: DeviceInfo = {
        embedder: {
          id,
          version: info.version,
          alpha: info.alpha,
          inputSize: info.inputSize,
          dim: info.dim,
          inputRange: w.inputRange ?? null,
          modelUrl: '/api/device/embedder/model.json',
        },
        bundle: c.live.hasModel ? { modelUrl: '/api/device/bundle/model.json', metaUrl: '/api/device/bundle/framewise.json' } : null,
        wasmUrl: '/api/device/wasm/',
      };
      json(res, 200, body);
      return true;
    }
    const file = parts[3];
    if (parts.length !== 4 || !file || !/^[\w][\w.-]*$/.test(file)) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no device file ${path}`);
    let full: string | undefined;
    if (parts[2] === 'embedder') full = join((await weightsDir()).dir, file);
    else if (parts[2] === 'bundle' && BUNDLE_NAMES.has(file)) full = join(await c.live.bundleDir(), file);
    else if (parts[2] === 'wasm' && WASM_FILES.has(file)) full = join(wasmDir(), file);
    if (!full || !existsSync(full)) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no device file ${path}`);
    sendFile(req, res, full);
    return true;
  };
}
