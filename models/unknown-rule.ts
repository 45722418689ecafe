// When a frame is `unknown` ("none of these"): its top probability is below `below` (the head is
// unsure), or its embedding is farther than `beyond` from every class's mean embedding in the
// training data (the frame is unlike anything the head was trained on; a softmax head extrapolates
// confidently there, so the probability alone misses such frames). Both are calibrated at train
// time (training/unknown-threshold.ts), the distance per class (classes spread unequally) and stored in the bundle; 0 / absent turns each off.

export interface UnknownRule {
  /** Top probability below which a frame is unknown; 0: never. */
  below: number;
  /** A frame farther than beyond[c] (cosine distance) from centroid c, for every class c, is unknown. */
  far?: { centroids: readonly Float32Array[]; beyond: readonly number[] };
}

export const NEVER_UNKNOWN: UnknownRule = Object.freeze({ below: 0 });

/** As stored in framewise.json. */
export interface UnknownFarMeta {
  /** Per class: the cosine distance from its centroid within which its frames lie. */
  beyond: number[];
  /** Per class (softmax order): the mean of its unit-length training embeddings (the appearance part: without the motion stream). */
  centroids: number[][];
}

/** The bundle's rule; `override` (label --unknown-below P) replaces the probability threshold, and 0 turns both checks off. */
export function unknownRuleOf(meta: { unknownBelow?: number; unknownFar?: UnknownFarMeta }, override?: number): UnknownRule {
  if (override === 0) return NEVER_UNKNOWN;
  const below = override ?? meta.unknownBelow ?? 0;
  const f = meta.unknownFar;
  return f ? { below, far: { beyond: f.beyond, centroids: f.centroids.map((c) => Float32Array.from(c)) } } : { below };
}

/** 1 - cosine similarity between `c` and the first c.length values of `x` (its appearance part when a motion stream follows). */
export function cosineDistance(x: ArrayLike<number>, c: ArrayLike<number>): number {
  let xx = 0;
  let dot = 0;
  let cc = 0;
  for (let i = 0; i < c.length; i++) {
    xx += x[i]! * x[i]!;
    dot += x[i]! * c[i]!;
    cc += c[i]! * c[i]!;
  }
  return 1 - dot / (Math.sqrt(xx * cc) || 1);
}

/** Whether a frame with these probabilities (and embedding, for the distance check) is unknown. */
export function isUnknown(rule: UnknownRule, topProbability: number, embedding?: ArrayLike<number>): boolean {
  if (topProbability < rule.below) return true;
  if (rule.far && embedding && embedding.length >= (rule.far.centroids[0]?.length ?? Infinity)) {
    const { centroids, beyond } = rule.far;
    return centroids.every((c, k) => cosineDistance(embedding, c) > beyond[k]!);
  }
  return false;
}
