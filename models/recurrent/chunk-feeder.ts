// Cuts a set of labeled sequences into truncated-BPTT chunks for B parallel slots: each slot plays
// one sequence at a time, k frames per chunk; when a sequence ends, the rest of that chunk is
// padding (mask 0) and the slot starts the next sequence from a zero state on the following chunk.
// One pass over the generator = one epoch (every sequence exactly once, in seeded random order).
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { FrameInput } from './head.ts';
import { SeededRandom } from '../../core/seeded-random.ts';
import type { TrainChunk } from './trainer.ts';

export interface LabeledSequence {
  frames: FrameInput;
  /** One class index per frame; negative = not counted in the loss. */
  labels: ArrayLike<number>;
}

export interface FeedOptions {
  /** Slots B (must equal the trainer's batch). */
  batch: number;
  /** Frames per chunk k. */
  chunk: number;
  /** Embedding length D. */
  dim: number;
  /** Order of the sequences; omit to keep the given order. */
  rng?: SeededRandom;
}

export interface FeedItem {
  chunk: TrainChunk;
  /** Slots whose new sequence starts with this chunk: call trainer.resetSlots(reset) first. */
  reset: number[];
}

export function* chunkBatches(sequences: readonly LabeledSequence[], o: FeedOptions): Generator<FeedItem> {
  const { batch: B, chunk: k, dim: D } = o;
  const lengthOf = (f: FrameInput) => (f instanceof Float32Array ? f.length / D : f.length);
  sequences.forEach((s, i) => {
    if (lengthOf(s.frames) !== s.labels.length || (s.frames instanceof Float32Array && s.frames.length % D !== 0)) {
      throw new FramewiseError(ErrorCodes.DATASET_INVALID, `sequence ${i}: ${lengthOf(s.frames)} frames of dim ${D} but ${s.labels.length} labels`);
    }
  });
  const order = sequences.map((_, i) => i);
  o.rng?.shuffle(order);
  let nextSeq = 0;
  const current: ({ seq: LabeledSequence; pos: number } | null)[] = Array.from({ length: B }, () => null);
  const startSlot = (b: number): boolean => {
    while (nextSeq < order.length) {
      const seq = sequences[order[nextSeq++]!]!;
      if (lengthOf(seq.frames) > 0) {
        current[b] = { seq, pos: 0 };
        return true;
      }
    }
    current[b] = null;
    return false;
  };
  const reset0: number[] = [];
  for (let b = 0; b < B; b++) if (startSlot(b)) reset0.push(b);
  let reset = reset0;
  while (current.some((c) => c !== null)) {
    const inputs = new Float32Array(B * k * D);
    const labels = new Int32Array(B * k).fill(-1);
    const mask = new Uint8Array(B * k);
    const finished: number[] = [];
    for (let b = 0; b < B; b++) {
      const cur = current[b];
      if (!cur) continue;
      const n = lengthOf(cur.seq.frames);
      const take = Math.min(k, n - cur.pos);
      for (let t = 0; t < take; t++) {
        const src = cur.pos + t;
        const f = cur.seq.frames;
        inputs.set(f instanceof Float32Array ? f.subarray(src * D, (src + 1) * D) : (f as readonly Float32Array[])[src]!, (b * k + t) * D);
        labels[b * k + t] = cur.seq.labels[src]!;
        mask[b * k + t] = 1;
      }
      cur.pos += take;
      if (cur.pos >= n) finished.push(b);
    }
    yield { chunk: { steps: k, inputs, labels, mask }, reset };
    reset = finished.filter((b) => startSlot(b));
  }
}
