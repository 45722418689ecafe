// Causal input normalisation: each embedding minus an exponential moving average of the stream's
// embeddings so far (m_0 = x_0, m_t = (1-α) m_{t-1} + α x_t, input x_t - m_t). What stays still
// (the person's looks, the room, the lighting) fades from the input and what changes (the motion
// of the activity) stands out; it is what lets a head trained on one person label another (see
// the README's real-data results). The mean is part of each stream's recurrent state, so chunked,
// batched, live and training paths all see the same inputs. α = 0 turns it off. Only the first
// `inputNormDims` values are normalised: a motion stream after the embedding is a change already,
// and its steady level (how fast a person moves) is what tells walking from running. That stream
// is scaled by `motionGain` instead: its 67 small values would otherwise carry a tiny share of the
// input's variance next to the embedding's 256-1280 (training/motion-gain.ts).

/** How a head prepares each input frame: the running-mean rate, its reach, and the motion stream's gain. */
export interface InputPrep {
  /** Rate α of the running mean (0 = off). */
  inputNorm: number;
  /** Leading values the mean is subtracted from; absent: all. */
  inputNormDims?: number;
  /** Factor for the values after `inputNormDims` (the motion stream); absent: 1. */
  motionGain?: number;
}

/**
 * Normalises `frames` (in order) from the running `mean`, writing frame t's values straight into
 * `out` at `offset(t)` (the head's packed input), so no per-frame array is made; values past the
 * first `inputNormDims` are multiplied by `motionGain`. Returns the new mean; never writes into
 * `frames` or `mean`.
 */
export function normalizeInto(
  frames: readonly Float32Array[],
  mean: Float32Array | undefined,
  prep: InputPrep,
  out: Float32Array,
  offset: (t: number) => number,
): Float32Array | undefined {
  const alpha = prep.inputNorm;
  const dims = prep.inputNormDims ?? Infinity;
  const gain = prep.motionGain ?? 1;
  let m = alpha > 0 && mean ? Float32Array.from(mean) : mean;
  frames.forEach((x, t) => {
    const o = offset(t);
    const n = Math.min(dims, x.length);
    if (alpha > 0) {
      if (!m) m = Float32Array.from(x);
      else for (let i = 0; i < x.length; i++) m[i] = (1 - alpha) * m[i]! + alpha * x[i]!;
      for (let i = 0; i < n; i++) out[o + i] = x[i]! - m[i]!;
    } else out.set(x.subarray(0, n), o);
    for (let i = n; i < x.length; i++) out[o + i] = gain * x[i]!;
  });
  return m;
}
