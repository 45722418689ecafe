// Seeded weight initialisers (Keras' defaults) on our own PRNG, identical on every backend.
import type { SeededRandom } from '../../core/seeded-random.ts';

/** Glorot (Xavier) uniform: U(-a, a), a = sqrt(6 / (fanIn + fanOut)); Keras' default kernel init. */
export function glorotUniform(rng: SeededRandom, fanIn: number, fanOut: number, scale = 1): Float32Array {
  const a = scale * Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(fanIn * fanOut);
  for (let i = 0; i < out.length; i++) out[i] = (2 * rng.next() - 1) * a;
  return out;
}

/**
 * A [rows, cols] matrix whose `rows`-sized column blocks of width `rows` are orthogonal (Keras'
 * recurrent init, per gate block). Orthogonal recurrent weights keep the singular values of W_hh at
 * 1 at the start, so gradients through time neither explode nor vanish from the first step.
 */
export function orthogonalBlocks(rng: SeededRandom, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let c0 = 0; c0 < cols; c0 += rows) {
    const w = Math.min(rows, cols - c0);
    const q = orthogonal(rng, rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < w; c++) out[r * cols + c0 + c] = q[r * rows + c];
  }
  return out;
}

/** An n x n orthogonal matrix: modified Gram-Schmidt on a Gaussian matrix (row-major). */
function orthogonal(rng: SeededRandom, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j < i; j++) {
      const rj = j * n;
      let dot = 0;
      for (let k = 0; k < n; k++) dot += a[ri + k] * a[rj + k];
      for (let k = 0; k < n; k++) a[ri + k] -= dot * a[rj + k];
    }
    let norm = 0;
    for (let k = 0; k < n; k++) norm += a[ri + k] * a[ri + k];
    norm = Math.sqrt(norm) || 1;
    for (let k = 0; k < n; k++) a[ri + k] /= norm;
  }
  return a;
}
