// The Teach view's training, in its own worker thread so the server's event loop (live sessions,
// uploads) never waits for it: the same entry points as `framewise train` (prepareData, then
// trainBundle) on a config built by resolveTrainConfig, so the same trainer and defaults. The
// thread has its own tfjs and its own single-threaded embedding engine; it reports by messages.
import { parentPort, workerData } from 'node:worker_threads';
import type { BackendRequest } from '../models/backend.ts';
import { loadEmbeddingEngine, type EngineRequest } from '../models/engine-choice.ts';
import { asFramewiseError, ErrorCodes } from '../core/errors.ts';
import type { TrainConfig } from '../training/config.ts';
import type { EpochRecord } from '../training/fit.ts';
import { prepareData } from '../training/prepare.ts';
import { trainBundle } from '../training/train-bundle.ts';

export interface TrainJob {
  entry: string;
  config: TrainConfig;
  backend?: BackendRequest;
  engine?: EngineRequest;
}

export type TrainerMessage =
  | { type: 'log'; line: string }
  | { type: 'training' }
  | { type: 'epoch'; record: EpochRecord; epochs: number }
  | { type: 'done'; dir: string }
  | { type: 'failed'; code: string; message: string };

const post = (m: TrainerMessage) => parentPort!.postMessage(m);

async function main(job: TrainJob): Promise<void> {
  const log = (line: string) => post({ type: 'log', line });
  const config = job.config;
  // One thread of one worker: the other core stays with the live sessions.
  const embedder = await loadEmbeddingEngine({
    id: config.embedder,
    modelsDir: config.modelsDir,
    cacheDir: config.cacheDir,
    backend: job.backend,
    engine: job.engine,
    workers: 1,
    threads: 1,
    isolate: false,
    log,
  });
  try {
    const data = await prepareData(config, embedder, log);
    post({ type: 'training' });
    await trainBundle(config, data, { log, onEpoch: (record, epochs) => post({ type: 'epoch', record, epochs }) });
    post({ type: 'done', dir: config.out });
  } finally {
    embedder.dispose();
  }
}

main(workerData as TrainJob).catch((err: unknown) => {
  const e = asFramewiseError(err, ErrorCodes.TRAINING_FAILED, 'training failed');
  post({ type: 'failed', code: e.code, message: e.message });
});
