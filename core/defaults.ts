// Every default in one place: the CLI shows these in --help, library calls fall back to them.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { CropPolicy } from './types.ts';

export const DEFAULTS = {
  /** Embedder used when none is named: the 1280-d MobileNetV2 (best ImageNet transfer of the three). */
  embedder: 'mobilenet_v2_1.0_224',
  /**
   * The head's per-frame input: the embedding alone, or with the motion stream appended
   * (models/motion.ts), scaled by `train --motion-gain` (README: "What the head sees per frame").
   */
  features: 'appearance+motion' as 'appearance' | 'appearance+motion',
  /**
   * What `train --motion-gain auto` scales the motion stream to: this many times the appearance
   * part's total variance over the training clips (training/motion-gain.ts). Measured (README):
   * 8 to 50 all beat 1 (equal shares) on ud810 and the speed task; the speed task needs 20+.
   */
  motionVariance: 32,
  /** Model input side in pixels (all registered MobileNets are 224). */
  inputSize: 224,
  crop: 'center' as CropPolicy,
  /** Decoded frames held for a slow consumer before ffmpeg is paused (224x224 rgb24: 147 KiB each). */
  decodeHighWaterMark: 8,
  /** Frames per second the head is trained and run at; undefined keeps the source rate. */
  fps: 10,
  /** The frame rates framewise runs at, frames per second (decode, train, embed, label): 0.1 to 240. */
  fpsRange: { min: 0.1, max: 240 },
  /** Frames per truncated-BPTT chunk. */
  chunk: 32,
  hidden: 256,
  layers: 1,
  cell: 'lstm' as 'lstm' | 'gru',
  dropout: 0.3,
  /** Rate of the running mean subtracted from each embedding in heads `train` makes (0 = off); a bundle without the field loads as 0. */
  inputNorm: 0.05,
  clip: 1.0,
  learningRate: 1e-3,
  epochs: 30,
  batch: 8,
  /**
   * Frames per embedder call when frames are queued (the embed operator never waits to fill one).
   * 16: ONNX Runtime on 2 threads runs MobileNetV2 5-10% faster per frame than at 8, and a pool
   * of 2 wasm workers gets 8 frames each.
   */
  embedBatch: 16,
  /** Embedder calls in flight in the embed operator: 2 keeps an engine on another thread busy (pipeline/embed-stage.ts). */
  embedConcurrency: 2,
  seed: 42,
  /** Segment smoothing (pipeline/segment.ts): centred moving average in frames (1 = off), frames a
   * new label must lead by `margin` (probability) before a switch, shortest segment in ms. */
  smoothing: { windowFrames: 1, hysteresisFrames: 3, margin: 0.05, minSegmentMs: 500 },
  /** `framewise serve`: bind address (loopback unless --host), port, live limits and timing. */
  serve: {
    host: '127.0.0.1',
    port: 8080,
    /** Concurrent WebSocket sessions; one more is refused with E_BUSY. */
    maxSessions: 8,
    /** Ping interval; a peer that misses one pong is terminated. */
    heartbeatMs: 15_000,
    /** A socket must say hello within this long, or it is closed and its session slot freed. */
    helloTimeoutMs: 5_000,
    /** Rate the browser client sends webcam frames at. */
    liveFps: 15,
    /** Frames a client may have sent without an answer (label or dropped) before it skips capture. */
    maxInFlight: 2,
    /** Outgoing bytes queued on a socket above which label/stats messages are coalesced. */
    coalesceBytes: 256 * 1024,
    /** Largest upload accepted by POST /api/jobs. */
    maxUploadBytes: 512 * 1024 * 1024,
  },
  /** `framewise queue` / `framewise worker` (queue/): BullMQ on Redis. */
  queue: {
    /** BullMQ queue name (all of its Redis keys start with `bull:<name>:`). */
    name: 'framewise-label',
    /** Tries per job before it is failed; retries wait backoffMs, 2x, 4x, ... (no retry storm). */
    attempts: 3,
    backoffMs: 5_000,
    /** Job lock: renewed every lockMs/2 while a worker is alive; a killed worker's job is taken
     * again after the lock expires and the next stall check (every stalledMs) sees it. */
    lockMs: 30_000,
    stalledMs: 30_000,
    /** Jobs per worker process (the embedding engine already uses every core for one job). */
    concurrency: 1,
    /** SIGTERM: time the current job gets to finish before it is released back to the queue. */
    graceMs: 30_000,
    /** Least time between two progress updates of a job (each is a Redis round trip). */
    progressMs: 500,
    /** How long `queue` and `worker` try to reach Redis at start before giving up. */
    connectTimeoutMs: 5_000,
  },
  /** Cache for downloaded weights and embeddings when none is given (the CLI reads FRAMEWISE_CACHE and XDG_CACHE_HOME). */
  cacheDir: join(homedir(), '.cache', 'framewise'),
} as const;
