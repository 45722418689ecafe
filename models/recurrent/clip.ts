// Gradient clipping by global norm: g <- min(1, λ / ||g||) · g, with ||g|| the L2 norm over ALL
// parameters together (one scale for every tensor, so the update keeps its direction).
import * as tf from '@tensorflow/tfjs';

export interface ClipResult {
  /** Clipped gradients (new tensors; the inputs are left untouched and stay owned by the caller). */
  grads: tf.Tensor[];
  /** ||g|| before clipping. */
  norm: number;
  /** The factor applied, min(1, λ / ||g||); 1 when clipping is off or not needed. */
  scale: number;
}

/** `maxNorm` <= 0 or Infinity disables clipping (the norm is still measured for the step record). */
export function clipByGlobalNorm(grads: readonly tf.Tensor[], maxNorm: number): ClipResult {
  const norm = tf.tidy(() => {
    const squares = grads.map((g) => tf.sum(tf.square(g)));
    return tf.sqrt(tf.addN(squares)).dataSync()[0]!;
  });
  const active = maxNorm > 0 && Number.isFinite(maxNorm) && norm > maxNorm;
  const scale = active ? maxNorm / norm : 1;
  return { grads: grads.map((g) => tf.tidy(() => (active ? tf.mul(g, scale) : tf.clone(g)))), norm, scale };
}
