// A real embedder (tfjs, in a pool worker) with planted faults, for the pool's error tests.
// Frames are marked by their first three pixel bytes:
//   THROW_MARK: embed() rejects with a FramewiseError whose cause is a RangeError;
//   EXIT_MARK:  the worker thread calls process.exit(7) the first time any worker sees it (a flag
//               file makes it once per pool, so the retry on the replacement succeeds).
import { existsSync, writeFileSync } from 'node:fs';
import type { Embedder, RgbImage } from '../../../models/embedder.ts';
import { loadTfjsInWorker, type TfjsWorkerConfig } from '../../../models/pool/factories.ts';
import { ErrorCodes, FramewiseError } from '../../../core/errors.ts';

export const THROW_MARK = [1, 2, 3] as const;
export const EXIT_MARK = [7, 7, 7] as const;

const marked = (f: RgbImage, m: readonly number[]) => f.rgb[0] === m[0] && f.rgb[1] === m[1] && f.rgb[2] === m[2];

export function mark(rgb: Uint8Array, m: readonly number[]): Uint8Array {
  rgb.set(m, 0);
  return rgb;
}

export async function loadFaultyEmbedder(config: TfjsWorkerConfig & { exitFlag: string }): Promise<Embedder> {
  const real = await loadTfjsInWorker(config);
  return {
    id: real.id,
    dim: real.dim,
    inputSize: real.inputSize,
    async embed(frames) {
      if (frames.some((f) => marked(f, THROW_MARK))) {
        throw new FramewiseError(ErrorCodes.MODEL_INVALID, 'planted fault in a marked frame', { cause: new RangeError('the root cause') });
      }
      if (frames.some((f) => marked(f, EXIT_MARK)) && !existsSync(config.exitFlag)) {
        writeFileSync(config.exitFlag, 'crashed once');
        process.exit(7);
      }
      return real.embed(frames);
    },
    classify: (f, k) => real.classify(f, k),
    dispose: () => real.dispose(),
  };
}
