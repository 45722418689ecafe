// Chooses the tfjs compute backend once per process (tfjs backends are process-global).
// Best first: native CUDA, native CPU, wasm (SIMD, one thread in Node), plain JS cpu.
// The two native packages are optional dependencies: their install downloads libtensorflow and
// may have failed or been skipped, so "installed" is only known by trying to load them.
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';

export const BACKENDS = ['node-gpu', 'node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendRequest = BackendName | 'auto';

/** Loads the package behind a backend; throws when it is absent or broken. Injectable for tests. */
export type BackendLoader = (name: BackendName) => Promise<void>;

export interface BackendChoice {
  name: BackendName;
  /** The tfjs backend id that ended up active ('tensorflow', 'wasm', 'cpu'). */
  tfBackend: string;
  /** Why each better backend was skipped, for `framewise doctor` and the start-up line. */
  skipped: { name: BackendName; reason: string }[];
}

const require = createRequire(import.meta.url);

export const defaultLoader: BackendLoader = async (name) => {
  switch (name) {
    case 'node-gpu':
      // Registers the 'tensorflow' backend bound to libtensorflow with CUDA.
      await import('@tensorflow/tfjs-node-gpu' as string);
      return;
    case 'node':
      await import('@tensorflow/tfjs-node' as string);
      return;
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      // In Node the .wasm binaries are read from the package's dist folder, not fetched.
      const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
      wasm.setWasmPaths(dist + '/');
      return;
    }
    case 'cpu':
      return; // bundled with @tensorflow/tfjs
  }
};

const TF_ID: Record<BackendName, string> = { 'node-gpu': 'tensorflow', node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

/** Parses `--backend` / FRAMEWISE_BACKEND; undefined and '' mean auto. */
export function parseBackendRequest(value: string | undefined): BackendRequest {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new FramewiseError(ErrorCodes.USAGE, `unknown backend "${value}": use one of auto, ${BACKENDS.join(', ')}`);
}

/**
 * Activates the best available backend, or exactly the requested one (an unavailable forced
 * backend is an error, never a silent fallback).
 */
export async function chooseBackend(request: BackendRequest = 'auto', loader: BackendLoader = defaultLoader): Promise<BackendChoice> {
  const candidates: readonly BackendName[] = request === 'auto' ? BACKENDS : [request];
  const skipped: BackendChoice['skipped'] = [];
  for (const name of candidates) {
    try {
      await loader(name);
      const ok = await tf.setBackend(TF_ID[name]);
      if (!ok) throw new Error(`tf.setBackend('${TF_ID[name]}') returned false`);
      await tf.ready();
      return { name, tfBackend: tf.getBackend(), skipped };
    } catch (err) {
      const reason = firstLine(err);
      if (request !== 'auto') {
        throw new FramewiseError(ErrorCodes.BACKEND_UNAVAILABLE, `backend "${name}" is not available: ${reason}${installHint(name)}`, { cause: err });
      }
      skipped.push({ name, reason });
    }
  }
  throw new FramewiseError(ErrorCodes.BACKEND_UNAVAILABLE, 'no tfjs backend could be initialised');
}

let active: Promise<BackendChoice> | undefined;

/**
 * The process-wide backend: chosen on first call ('auto' unless given) and printed once to
 * stderr. Later calls return the same choice.
 */
export function ensureBackend(request: BackendRequest = 'auto', log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<BackendChoice> {
  active ??= chooseBackend(request).then((choice) => {
    log(`framewise: tfjs backend ${choice.name} (${choice.tfBackend})`);
    return choice;
  });
  active.catch(() => (active = undefined));
  return active;
}

export function installHint(name: BackendName): string {
  switch (name) {
    case 'node-gpu':
      return ' (install @tensorflow/tfjs-node-gpu with internet access, CUDA 11.2 and cuDNN 8.1 on Linux x64)';
    case 'node':
      return ' (install @tensorflow/tfjs-node with internet access: its install downloads libtensorflow)';
    default:
      return '';
  }
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0]!.slice(0, 200);
}
