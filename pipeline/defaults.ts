// Every default in one place: the CLI shows these in --help, library calls fall back to them.
import type { CropPolicy } from './types.ts';

export const DEFAULTS = {
  /** Embedder used when none is named: the 1280-d MobileNetV2 (best ImageNet transfer of the three). */
  embedder: 'mobilenet_v2_1.0_224',
  /** Model input side in pixels (all registered MobileNets are 224). */
  inputSize: 224,
  crop: 'center' as CropPolicy,
  /** Frames per second the head is trained and run at; undefined keeps the source rate. */
  fps: 10,
  /** Frames per truncated-BPTT chunk. */
  chunk: 32,
  hidden: 256,
  layers: 1,
  cell: 'lstm' as 'lstm' | 'gru',
  dropout: 0.3,
  clip: 1.0,
  learningRate: 1e-3,
  epochs: 30,
  batch: 8,
  seed: 42,
  /** Cache for downloaded weights and embeddings. */
  cacheDir: process.env.FRAMEWISE_CACHE ?? `${process.env.XDG_CACHE_HOME ?? `${process.env.HOME ?? '.'}/.cache`}/framewise`,
} as const;
