// The motion stream: a small, causal description of where and how much the picture changed since
// the stream's previous frame, appended to the appearance embedding. MobileNet's embedding is
// globally average-pooled, so it hardly changes when a person moves across the frame; speed
// (walking, jogging, running) and where the movement is (arms overhead or in front) are weak in it.
//
// The descriptor: the frame in luma at GRID_CELLS x GRID_CELLS, the absolute difference to the
// previous frame's, less a noise floor (compression noise, sensor grain), pooled into a
// MOTION_GRID x MOTION_GRID grid of mean change, plus the mean change over the whole frame and
// where its centre of mass lies. Values are square roots of fractions of full scale (a small
// movement still registers next to a large one), so they sit in [0, 1] like the embedding's.
// The first frame of a stream has no predecessor: all zeros.
//
// Browser-safe and pure: the offline and live paths on the server and the on-device path in the
// browser run this same code on the same frames (at the bundle's fps), so they compute the same features.

/** Cells per side of the pooled motion grid. */
export const MOTION_GRID = 8;
/** Luma cells per side the difference is taken at (each pools GRID_CELLS / MOTION_GRID of them per side). */
const GRID_CELLS = 32;
/** Changes of up to this many luma levels (of 255) per cell are noise, not motion. */
const NOISE_FLOOR = 3;
/** Length of the motion features: the grid, the mean change, the centre of mass (x, y). */
export const MOTION_DIM = MOTION_GRID * MOTION_GRID + 3;

/** Which per-frame features a head takes: the embedder's alone, or with the motion stream appended. */
export type FeatureSet = 'appearance' | 'appearance+motion';
export const FEATURE_SETS: readonly FeatureSet[] = ['appearance', 'appearance+motion'];

/** Length of the head's input for an embedder of `embedderDim` and these features. */
export function featureDim(embedderDim: number, features: FeatureSet): number {
  return features === 'appearance+motion' ? embedderDim + MOTION_DIM : embedderDim;
}

/** How many of `inputDim` leading values are the embedder's (the motion stream, when there is one, follows them). */
export function appearanceDim(inputDim: number, features: FeatureSet): number {
  return features === 'appearance+motion' ? inputDim - MOTION_DIM : inputDim;
}

/** Pixels in rgb24 (3 bytes) or rgba (4 bytes, as a canvas gives them). */
export interface MotionInput {
  rgb: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

/** One stream's motion features, frame after frame (it keeps the previous frame's luma grid). */
export class MotionStream {
  private previous: Float32Array | undefined;

  /** The features of this frame given the previous one passed here. */
  next(frame: MotionInput): Float32Array {
    const luma = lumaGrid(frame);
    const out = new Float32Array(MOTION_DIM);
    const before = this.previous;
    this.previous = luma;
    if (!before) return out;
    const pool = GRID_CELLS / MOTION_GRID;
    let total = 0;
    let sx = 0;
    let sy = 0;
    for (let y = 0; y < GRID_CELLS; y++) {
      for (let x = 0; x < GRID_CELLS; x++) {
        const d = Math.max(0, Math.abs(luma[y * GRID_CELLS + x]! - before[y * GRID_CELLS + x]!) - NOISE_FLOOR);
        out[Math.floor(y / pool) * MOTION_GRID + Math.floor(x / pool)]! += d;
        total += d;
        sx += d * ((x + 0.5) / GRID_CELLS - 0.5);
        sy += d * ((y + 0.5) / GRID_CELLS - 0.5);
      }
    }
    const g = MOTION_GRID * MOTION_GRID;
    for (let k = 0; k < g; k++) out[k] = Math.sqrt(out[k]! / (pool * pool * 255));
    out[g] = Math.sqrt(total / (GRID_CELLS * GRID_CELLS * 255));
    // Centre of mass of the change, in [-1, 1] from the frame's centre; 0 when nothing moved.
    out[g + 1] = total > 0 ? (2 * sx) / total : 0;
    out[g + 2] = total > 0 ? (2 * sy) / total : 0;
    return out;
  }

  /** Forget the previous frame (a new scene, a reset stream). */
  reset(): void {
    this.previous = undefined;
  }
}

/** The embedding with the motion features after it (a new array). */
export function withMotion(embedding: Float32Array, motion: Float32Array): Float32Array {
  const out = new Float32Array(embedding.length + motion.length);
  out.set(embedding);
  out.set(motion, embedding.length);
  return out;
}

/**
 * What a repeated frame gets: the same appearance and no motion. Where a stream has a gap (a source
 * slower than the head's rate), ffmpeg's fps filter repeats the last frame offline; live fills the
 * gap the same way with this.
 */
export function repeatedFrame(features: Float32Array): Float32Array {
  const out = Float32Array.from(features);
  out.fill(0, out.length - MOTION_DIM);
  return out;
}

/** Mean luma (0-255) of GRID_CELLS x GRID_CELLS cells; every other pixel of each cell on both axes is enough. */
function lumaGrid({ rgb, width, height }: MotionInput): Float32Array {
  const channels = rgb.length / (width * height);
  const out = new Float32Array(GRID_CELLS * GRID_CELLS);
  for (let cy = 0; cy < GRID_CELLS; cy++) {
    const y0 = Math.floor((cy * height) / GRID_CELLS);
    const y1 = Math.max(y0 + 1, Math.floor(((cy + 1) * height) / GRID_CELLS));
    for (let cx = 0; cx < GRID_CELLS; cx++) {
      const x0 = Math.floor((cx * width) / GRID_CELLS);
      const x1 = Math.max(x0 + 1, Math.floor(((cx + 1) * width) / GRID_CELLS));
      let sum = 0;
      let n = 0;
      for (let y = y0; y < y1; y += 2) {
        let i = (y * width + x0) * channels;
        for (let x = x0; x < x1; x += 2, i += 2 * channels) {
          sum += 77 * rgb[i]! + 150 * rgb[i + 1]! + 29 * rgb[i + 2]!;
          n++;
        }
      }
      out[cy * GRID_CELLS + cx] = sum / (256 * n);
    }
  }
  return out;
}
