// Training sequences for the recurrent head, and their cutting into truncated-BPTT chunks.
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
}

/** Stitches single-label clips into multi-activity sequences (clip order and choice are random). */
export function stitchClips(clips: readonly LabeledSequence[], o: StitchOptions): LabeledSequence[] {
  if (clips.length === 0) return [];
  const out: LabeledSequence[] = [];
  for (let s = 0; s < o.sequences; s++) {
    const parts: LabeledSequence[] = [];
    for (let c = 0; c < o.clipsPerSequence; c++) {
      const prev = parts[parts.length - 1];
      const pool = prev ? clips.filter((x) => x.labels[0] !== prev.labels[0]) : clips;
      const from = pool.length > 0 ? pool : clips;
      parts.push(from[Math.floor(o.rand() * from.length)]!);
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

/** One truncated-BPTT step's input: B slots of k frames, row-major [B, k, D] / [B, k]. */
export interface Chunk {
  x: Float32Array;
  labels: Int32Array;
  /** 1 where the frame is real, 0 where a slot's sequence has ended (padding). */
  mask: Float32Array;
  /** Slots whose state must be zeroed before this chunk: a new sequence starts in them. */
  reset: boolean[];
  batch: number;
  chunk: number;
  dim: number;
}

/**
 * Cuts sequences into chunks for B parallel slots. Each slot plays its sequences back to back in
 * the given order; a sequence always starts at a chunk boundary (its slot is reset there), and
 * the tail of a chunk after a sequence ends is masked. State is carried within a sequence only.
 */
export function* tbpttChunks(sequences: readonly LabeledSequence[], batch: number, chunk: number): Generator<Chunk> {
  if (sequences.length === 0) return;
  const dim = sequences[0]!.embeddings[0]!.length;
  const queues: LabeledSequence[][] = Array.from({ length: batch }, () => []);
  // Longest first, each to the least-loaded slot: slots finish together, little padding.
  const load = new Array<number>(batch).fill(0);
  for (const s of [...sequences].sort((a, b) => b.labels.length - a.labels.length)) {
    const slot = load.indexOf(Math.min(...load));
    queues[slot]!.push(s);
    load[slot]! += Math.ceil(s.labels.length / chunk) * chunk;
  }
  const cursor = queues.map(() => ({ seq: 0, pos: 0 }));
  while (cursor.some((c, b) => c.seq < queues[b]!.length)) {
    const x = new Float32Array(batch * chunk * dim);
    const labels = new Int32Array(batch * chunk);
    const mask = new Float32Array(batch * chunk);
    const reset = cursor.map((c) => c.pos === 0);
    for (let b = 0; b < batch; b++) {
      const c = cursor[b]!;
      const seq = queues[b]![c.seq];
      if (!seq) continue;
      const n = Math.min(chunk, seq.labels.length - c.pos);
      for (let t = 0; t < n; t++) {
        const row = b * chunk + t;
        x.set(seq.embeddings[c.pos + t]!, row * dim);
        labels[row] = seq.labels[c.pos + t]!;
        mask[row] = 1;
      }
      c.pos += n;
      if (c.pos >= seq.labels.length) {
        c.seq++;
        c.pos = 0;
      }
    }
    yield { x, labels, mask, reset, batch, chunk, dim };
  }
}
