// The motion stream's gain. Appended to the embedding, the stream's 67 values are small (square
// roots of fractions of full scale) and few next to the embedding's 256-1280, so at the start of
// training they carry under 1% of the input's variance (ud810 with MobileNetV2: 0.6 against 121)
// and the head fits how each training clip looks long before it learns how things move. Scaled to
// carry DEFAULTS.motionVariance times the appearance part's variance, the motion stream is what
// the head learns first, and appearance still counts: on ud810 this took the default head from
// 71-74% of a new person's frames to 81-89%, and on the generated speed task from 57% to over 95%
// (README). The gain is measured on the training clips as the head sees them (after the
// running-mean normalisation of the appearance part) and stored in the head's spec, so every path
// applies it.
import { DEFAULTS } from '../core/defaults.ts';
import { appearanceDim, type FeatureSet } from '../models/motion.ts';
import { normalizeInto } from '../models/recurrent/input-norm.ts';
import type { EmbeddedVideo } from './embed-dataset.ts';

/**
 * Clips where almost nothing moves have almost no motion variance; their gain would blow the
 * stream's rare flickers up into inputs that saturate the gates. ud810 with MobileNetV2 gets 80.
 */
const MAX_GAIN = 100;

/**
 * The gain that gives the motion stream `ratio` times the appearance part's total variance over
 * the clips' center views (DEFAULTS.motionVariance when not given), within [1, MAX_GAIN]; 1 when
 * the stream never moves.
 */
export function autoMotionGain(
  videos: readonly (readonly Pick<EmbeddedVideo, 'embeddings'>[])[],
  dim: number,
  features: FeatureSet,
  inputNorm: number,
  ratio: number = DEFAULTS.motionVariance,
): number {
  const A = appearanceDim(dim, features);
  if (A === dim) return 1;
  const sum = new Float64Array(dim);
  const sq = new Float64Array(dim);
  let n = 0;
  for (const views of videos) {
    const frames = views[0]!.embeddings;
    const x = new Float32Array(frames.length * dim);
    normalizeInto(frames, undefined, { inputNorm, inputNormDims: A }, x, (t) => t * dim);
    for (let o = 0; o < x.length; o += dim) {
      for (let i = 0; i < dim; i++) {
        sum[i]! += x[o + i]!;
        sq[i]! += x[o + i]! * x[o + i]!;
      }
    }
    n += frames.length;
  }
  let appearance = 0;
  let motion = 0;
  for (let i = 0; i < dim; i++) {
    const variance = Math.max(0, sq[i]! / n - (sum[i]! / n) ** 2);
    if (i < A) appearance += variance;
    else motion += variance;
  }
  if (!(motion > 0 && appearance > 0)) return 1;
  return Math.min(MAX_GAIN, Math.max(1, Math.sqrt((ratio * appearance) / motion)));
}
