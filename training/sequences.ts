// Training sequences for the recurrent head (models/recurrent/chunk-feeder.ts cuts them into chunks).
// A sequence is a run of frame embeddings with one class id per frame. Per-frame datasets give
// one sequence per video; folder-per-class datasets give single-label clips, which are stitched
// in random order so the head sees transitions and has to carry state across them.

export interface LabeledSequence {
  name: string;
  embeddings: Float32Array[];
  /** Class id per frame. */
  labels: Int32Array;
}

export interface StitchOptions {
  /** How many stitched sequences to build. */
  sequences: number;
  /** Clips per stitched sequence; consecutive clips always differ in class when possible. */
  clipsPerSequence: number;
  rand: () => number;
  /** Draw a class uniformly first, then one of its clips: a class with few clips is seen as often
   * as one with many (with few clips, the head otherwise learns the majority class as a prior). */
  balanceClasses?: boolean;
}

/** Stitches single-label clips into multi-activity sequences (clip order and choice are random). */
export function stitchClips(clips: readonly LabeledSequence[], o: StitchOptions): LabeledSequence[] {
  if (clips.length === 0) return [];
  const out: LabeledSequence[] = [];
  const pickFrom = (pool: readonly LabeledSequence[]) => {
    if (!o.balanceClasses) return pool[Math.floor(o.rand() * pool.length)]!;
    const classes = [...new Set(pool.map((x) => x.labels[0]))];
    const cls = classes[Math.floor(o.rand() * classes.length)];
    const ofClass = pool.filter((x) => x.labels[0] === cls);
    return ofClass[Math.floor(o.rand() * ofClass.length)]!;
  };
  for (let s = 0; s < o.sequences; s++) {
    const parts: LabeledSequence[] = [];
    for (let c = 0; c < o.clipsPerSequence; c++) {
      const prev = parts[parts.length - 1];
      const pool = prev ? clips.filter((x) => x.labels[0] !== prev.labels[0]) : clips;
      parts.push(pickFrom(pool.length > 0 ? pool : clips));
    }
    out.push(concatSequences(`stitch${s}`, parts));
  }
  return out;
}

export function concatSequences(name: string, parts: readonly LabeledSequence[]): LabeledSequence {
  const labels = new Int32Array(parts.reduce((n, p) => n + p.labels.length, 0));
  let at = 0;
  for (const p of parts) {
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return { name, embeddings: parts.flatMap((p) => p.embeddings), labels };
}

export interface JitterOptions {
  rand: () => number;
  /** Playback-speed factor range: frames are resampled by nearest neighbour, e.g. [0.8, 1.25]. */
  speed: [number, number];
  /** Probability of dropping each frame (a stalled camera or decoder). */
  dropProb: number;
}

/** Temporal augmentation: a random frame-rate change, then random dropped frames. */
export function temporalJitter(seq: LabeledSequence, o: JitterOptions): LabeledSequence {
  const speed = o.speed[0] + o.rand() * (o.speed[1] - o.speed[0]);
  const idx: number[] = [];
  for (let t = 0; t < seq.labels.length; t += speed) {
    if (o.rand() >= o.dropProb) idx.push(Math.floor(t));
  }
  if (idx.length === 0) idx.push(0);
  return {
    name: seq.name,
    embeddings: idx.map((i) => seq.embeddings[i]!),
    labels: Int32Array.from(idx, (i) => seq.labels[i]!),
  };
}
