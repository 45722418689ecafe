// One embedding worker thread: loads ONE embedder (its own tfjs instance, or an ONNX Runtime
// session) from the factory named in workerData, then answers embed/classify tasks one at a time.
// Pixels arrive as transferred buffers; embeddings go back transferred (each owns its buffer).
import { parentPort, workerData } from 'node:worker_threads';
import type { Embedder, RgbImage } from '../embedder.ts';
import type { FromWorker, ToWorker, WorkerInit } from './messages.ts';
import { serializeError } from './messages.ts';

const port = parentPort;
if (!port) throw new Error('models/pool/embed-worker.ts must run in a worker thread');
const init = workerData as WorkerInit;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

let embedder: Embedder;
try {
  const mod = (await import(init.factory.module)) as Record<string, unknown>;
  const load = mod[init.factory.exportName];
  if (typeof load !== 'function') throw new Error(`${init.factory.module} has no function export "${init.factory.exportName}"`);
  embedder = (await load({ ...init.factory.config, onProgress: (line: string) => post({ type: 'log', line }) })) as Embedder;
  post({
    type: 'ready',
    info: {
      id: embedder.id,
      dim: embedder.dim,
      inputSize: embedder.inputSize,
      macsPerFrame: (embedder as { macsPerFrame?: number }).macsPerFrame,
    },
  });
} catch (err) {
  post({ type: 'load-failed', error: serializeError(err) });
  // Let the message flush, then end: the pool treats this worker as never started.
  port.close();
  process.exitCode = 1;
}

// The task in hand: a close waits for it, because ending the thread while a native engine
// (ONNX Runtime) is inside run() aborts the whole process.
let current: Promise<void> = Promise.resolve();

port.on('message', (m: ToWorker) => {
  if (!embedder) return;
  if (m.type === 'close') {
    void current.then(() => {
      embedder.dispose();
      port.close();
    });
    return;
  }
  current = handle(m);
});

async function handle(m: Exclude<ToWorker, { type: 'close' }>): Promise<void> {
  try {
    if (m.type === 'embed') {
      const frames: RgbImage[] = m.pixels.map((rgb) => ({ rgb, width: m.size, height: m.size }));
      const out = await embedder.embed(frames);
      // Transfer only buffers an embedding owns whole; a view into a shared batch buffer is copied.
      const own = out.map((e) => (e.byteOffset === 0 && e.byteLength === e.buffer.byteLength ? e : e.slice()));
      post(
        { type: 'done', taskId: m.taskId, embeddings: own },
        own.map((e) => e.buffer as ArrayBuffer),
      );
    } else {
      const top = await embedder.classify({ rgb: m.pixels, width: m.size, height: m.size }, m.topK);
      post({ type: 'done', taskId: m.taskId, classes: top });
    }
  } catch (err) {
    post({ type: 'failed', taskId: m.taskId, error: serializeError(err) });
  }
}
