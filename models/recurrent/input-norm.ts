// Causal input normalisation: each embedding minus an exponential moving average of the stream's
// embeddings so far (m_0 = x_0, m_t = (1-α) m_{t-1} + α x_t, input x_t - m_t). What stays still
// (the person's looks, the room, the lighting) fades from the input and what changes (the motion
// of the activity) stands out; it is what lets a head trained on one person label another (see
// the README's real-data results). The mean is part of each stream's recurrent state, so chunked,
// batched, live and training paths all see the same inputs. α = 0 turns it off. Only the first
// `dims` values are normalised: a motion stream after the embedding is a change already, and its
// steady level (how fast a person moves) is what tells walking from running.

/**
 * Normalises `frames` (in order) from the running `mean` (undefined at a stream's start).
 * Returns new arrays and the new mean; never writes into its arguments.
 */
export function normalizeFrames(
  frames: readonly Float32Array[],
  mean: Float32Array | undefined,
  alpha: number,
  dims = Infinity,
): { frames: Float32Array[]; mean: Float32Array | undefined } {
  if (alpha <= 0 || frames.length === 0) return { frames: [...frames], mean };
  const D = frames[0]!.length;
  const packed = new Float32Array(frames.length * D);
  const m = normalizeInto(frames, mean, alpha, packed, (t) => t * D, dims);
  return { frames: frames.map((_, t) => packed.slice(t * D, (t + 1) * D)), mean: m };
}

/**
 * Normalises `frames` (in order) from the running `mean`, writing frame t's values straight into
 * `out` at `offset(t)` (the head's packed input), so no per-frame array is made; values past the
 * first `dims` are copied as they are. Returns the new mean; never writes into `frames` or `mean`.
 */
export function normalizeInto(
  frames: readonly Float32Array[],
  mean: Float32Array | undefined,
  alpha: number,
  out: Float32Array,
  offset: (t: number) => number,
  dims = Infinity,
): Float32Array | undefined {
  if (alpha <= 0 || frames.length === 0) {
    frames.forEach((x, t) => out.set(x, offset(t)));
    return mean;
  }
  let m = mean ? Float32Array.from(mean) : undefined;
  frames.forEach((x, t) => {
    if (!m) m = Float32Array.from(x);
    else for (let i = 0; i < x.length; i++) m[i] = (1 - alpha) * m[i]! + alpha * x[i]!;
    const o = offset(t);
    const n = Math.min(dims, x.length);
    for (let i = 0; i < n; i++) out[o + i] = x[i]! - m[i]!;
    for (let i = n; i < x.length; i++) out[o + i] = x[i]!;
  });
  return m;
}
