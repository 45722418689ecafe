// The embedder factories worker threads call (by module URL + export name, see messages.ts).
// They differ from the main-thread loaders only in choosing the tfjs backend silently: the main
// thread has already printed its choice, and N workers repeating it would be noise.
import { ensureBackend, type BackendRequest } from '../backend.ts';
import { loadEmbedder, type Embedder, type EmbedderConfig } from '../embedder.ts';

export interface TfjsWorkerConfig extends Omit<EmbedderConfig, 'backend'> {
  /** The backend the main thread chose (tfjs backends are per thread: each worker sets its own). */
  backend: BackendRequest;
}

export async function loadTfjsInWorker(config: TfjsWorkerConfig): Promise<Embedder> {
  await ensureBackend(config.backend, () => {});
  return loadEmbedder(config);
}

export interface OnnxWorkerConfig extends Record<string, unknown> {
  /** For the tfjs reference when the ONNX file must be (re)verified in this thread. */
  backend: BackendRequest;
}

export async function loadOnnxInWorker(config: OnnxWorkerConfig & import('../onnx/onnx-engine.ts').OnnxEmbedderConfig): Promise<Embedder> {
  // tfjs starts lazily, only when the file must be exported or verified, on the main thread's backend.
  const { loadOnnxEmbedder } = await import('../onnx/onnx-engine.ts');
  return loadOnnxEmbedder(config);
}

/** File URL of this module (.ts from the sources, .js from the build), for EmbedderFactory.module. */
export const FACTORIES_MODULE = import.meta.url;
