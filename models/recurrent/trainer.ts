// Truncated-BPTT training of a recurrent head. B sequences advance in parallel, each in its own
// state slot; every call to step() takes the next chunk of k frames of each slot, computes the
// mean per-frame cross-entropy over counted frames, backpropagates within the chunk only, clips by
// global norm, updates with AdamW at the scheduled rate, and carries each slot's final state (as a
// value, no gradient path) into the next chunk. resetSlots() starts new sequences in given slots.
//
// Repeatability: weight init (head seed) and dropout masks (trainer seed) come from our own
// seeded PRNG, so the same seeds and data give the same run on the same backend.
import * as tf from '@tensorflow/tfjs';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { chunkGradients } from './backprop.ts';
import { clipByGlobalNorm } from './clip.ts';
import { withMeans, type RecurrentHead } from './head.ts';
import { normalizeInto } from './input-norm.ts';
import { AdamW, type AdamWState } from './optimizer.ts';
import { learningRateSchedule, type LearningRateSchedule, type ScheduleOptions } from './schedule.ts';
import { SeededRandom } from '../../core/seeded-random.ts';
import { disposeStateTensors, unstackStates, zeroState, type RecurrentState } from './state.ts';

export interface TrainerOptions {
  /** Number of state slots B = sequences advanced in parallel. Default DEFAULTS.batch. */
  batch?: number;
  /** A schedule function, or options for learningRateSchedule(). Default constant DEFAULTS.learningRate. */
  schedule?: LearningRateSchedule | ScheduleOptions;
  /** Global-norm clip threshold λ; 0 or Infinity = off. Default DEFAULTS.clip (1.0). */
  clip?: number;
  /** Decoupled weight decay (AdamW), applied to kernels only. Default 0. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Seed of the dropout masks. Default: the head's seed + 1. */
  seed?: number;
}

/**
 * One chunk for all B slots, batch-major: frame t of slot b is at [b, t].
 * `inputs` has B*k*D values; `labels` has B*k class indices (a negative label means "not counted").
 */
export interface TrainChunk {
  /** k, frames per slot in this chunk (the last chunk of a sequence may be shorter, pad + mask). */
  steps: number;
  inputs: Float32Array;
  labels: Int32Array | readonly number[];
  /** Optional B*k weights, 1 = counted, 0 = padding (also frames with a negative label are ignored). */
  mask?: Uint8Array | Float32Array | readonly number[];
}

export interface StepRecord {
  /** Optimizer steps done after this one. */
  step: number;
  /** Mean cross-entropy over the counted frames of this chunk. */
  loss: number;
  /** Frame accuracy over the counted frames of this chunk. */
  accuracy: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate used for this update. */
  lr: number;
  /** Counted frames in this chunk. */
  frames: number;
}

export interface TrainerState {
  optimizer: AdamWState;
  slots: RecurrentState[];
  /** Dropout PRNG reseeded from this on restore, so resumed runs stay repeatable. */
  dropoutSeed: number;
}

export interface Trainer {
  readonly head: RecurrentHead;
  readonly batch: number;
  /** Current per-slot states (values; replaced after every step). */
  readonly slots: readonly RecurrentState[];
  /** Zero the state of the given slots (all when omitted): a new sequence starts there. */
  resetSlots(slots?: readonly number[]): void;
  step(chunk: TrainChunk): StepRecord;
  getState(): TrainerState;
  setState(state: TrainerState): void;
  /** Frees the optimizer's tensors (not the head: the caller owns it). */
  dispose(): void;
}

export function createTrainer(head: RecurrentHead, options: TrainerOptions = {}): Trainer {
  return new TbpttTrainer(head, options);
}

class TbpttTrainer implements Trainer {
  readonly batch: number;
  slots: RecurrentState[];
  private readonly schedule: LearningRateSchedule;
  private readonly clip: number;
  private readonly optimizer: AdamW;
  private rng: SeededRandom;
  private dropoutSeed: number;

  constructor(
    readonly head: RecurrentHead,
    options: TrainerOptions,
  ) {
    this.batch = options.batch ?? DEFAULTS.batch;
    if (!Number.isInteger(this.batch) || this.batch < 1) {
      throw new FramewiseError(ErrorCodes.USAGE, `trainer: batch must be a positive integer, got ${this.batch}`);
    }
    const s = options.schedule ?? { learningRate: DEFAULTS.learningRate };
    this.schedule = typeof s === 'function' ? s : learningRateSchedule(s);
    this.clip = options.clip ?? DEFAULTS.clip;
    this.optimizer = new AdamW(head.variables, head.weightNames(), {
      beta1: options.beta1,
      beta2: options.beta2,
      epsilon: options.epsilon,
      weightDecay: options.weightDecay,
    });
    this.dropoutSeed = options.seed ?? head.spec.seed + 1;
    this.rng = new SeededRandom(this.dropoutSeed);
    this.slots = Array.from({ length: this.batch }, () => head.zeroState());
  }

  resetSlots(slots?: readonly number[]): void {
    for (const b of slots ?? this.slots.keys()) {
      if (!(b >= 0 && b < this.batch)) throw new FramewiseError(ErrorCodes.USAGE, `trainer: no slot ${b}`);
      this.slots[b] = zeroState(this.head.spec);
    }
  }

  step(chunk: TrainChunk): StepRecord {
    const { spec } = this.head;
    const B = this.batch;
    const k = chunk.steps;
    const D = spec.inputDim;
    const C = spec.classes;
    if (!(Number.isInteger(k) && k >= 1) || chunk.inputs.length !== B * k * D || chunk.labels.length !== B * k) {
      throw new FramewiseError(
        ErrorCodes.USAGE,
        `trainer: chunk of ${k} steps for ${B} slots needs ${B * k * D} input values and ${B * k} labels, ` +
          `got ${chunk.inputs.length} and ${chunk.labels.length}`,
      );
    }
    if (chunk.mask && chunk.mask.length !== B * k) {
      throw new FramewiseError(ErrorCodes.USAGE, `trainer: mask has ${chunk.mask.length} values, expected ${B * k}`);
    }
    // Re-pack time-major (row t*B + b) so each step's rows are contiguous.
    const N = k * B;
    const x = new Float32Array(N * D);
    const onehot = new Float32Array(N * C);
    const mask = new Float32Array(N);
    const labels = new Int32Array(N).fill(-1);
    let counted = 0;
    // Input normalisation runs over each slot's real frames (not its padding), from the slot's mean.
    const means = this.slots.map((slot, b) => {
      const real: number[] = [];
      for (let t = 0; t < k; t++) if (!chunk.mask || Number(chunk.mask[b * k + t]) > 0) real.push(t);
      return normalizeInto(
        real.map((t) => chunk.inputs.subarray((b * k + t) * D, (b * k + t + 1) * D)),
        slot.mean,
        spec,
        x,
        (i) => (real[i]! * B + b) * D,
      );
    });
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < k; t++) {
        const src = b * k + t;
        const row = t * B + b;
        const y = chunk.labels[src]!;
        const m = chunk.mask ? Number(chunk.mask[src]) : 1;
        if (y >= C || !Number.isInteger(y)) {
          throw new FramewiseError(ErrorCodes.USAGE, `trainer: label ${y} out of range for ${C} classes`);
        }
        if (y >= 0 && m > 0) {
          onehot[row * C + y] = 1;
          mask[row] = 1;
          labels[row] = y;
          counted++;
        }
      }
    }
    const dropoutMask = spec.dropout > 0 ? this.dropoutMask(N * this.head.dropoutWidth, spec.dropout) : undefined;
    const lr = this.schedule(this.optimizer.step);
    const stacked = this.head.stackStates(this.slots);
    let kept: tf.Tensor[] = [];
    try {
      const out = tf.tidy(() => {
        const r = chunkGradients(
          this.head,
          {
            x: tf.tensor2d(x, [N, D]),
            onehot: tf.tensor2d(onehot, [N, C]),
            mask: tf.tensor2d(mask, [N, 1]),
            T: k,
            B,
            dropoutMask: dropoutMask && tf.tensor2d(dropoutMask, [N, this.head.dropoutWidth]),
          },
          stacked,
        );
        return {
          loss: r.loss,
          logits: r.logits,
          grads: r.grads,
          h: r.next.h,
          c: r.next.c.filter((t): t is tf.Tensor2D => t !== null),
        };
      });
      kept = [out.loss, out.logits, ...out.grads, ...out.h, ...out.c];
      const clipped = clipByGlobalNorm(out.grads, this.clip);
      try {
        this.optimizer.apply(clipped.grads, lr);
      } finally {
        for (const g of clipped.grads) g.dispose();
      }
      const hs = out.h.map((t) => t.dataSync() as Float32Array);
      const cs = spec.cell === 'lstm' ? out.c.map((t) => t.dataSync() as Float32Array) : hs.map(() => null);
      this.slots = withMeans(
        unstackStates(
          hs,
          cs,
          spec,
          this.slots.map((s) => s.frames),
          this.slots.map(() => k),
        ),
        means,
      );
      const logits = out.logits.dataSync();
      let correct = 0;
      for (let row = 0; row < N; row++) {
        if (labels[row]! < 0) continue;
        if (argmax(logits, row * C, C) === labels[row]) correct++;
      }
      return {
        step: this.optimizer.step,
        loss: out.loss.dataSync()[0]!,
        accuracy: counted ? correct / counted : 0,
        gradNorm: clipped.norm,
        lr,
        frames: counted,
      };
    } finally {
      disposeStateTensors(stacked);
      for (const t of kept) t.dispose();
    }
  }

  getState(): TrainerState {
    // A fresh seed drawn from the current PRNG: restoring reseeds with it, so a resumed run's
    // dropout masks are determined by the checkpoint alone.
    const seed = this.rng.int(2 ** 31);
    this.rng = new SeededRandom(seed);
    this.dropoutSeed = seed;
    return { optimizer: this.optimizer.getState(), slots: [...this.slots], dropoutSeed: seed };
  }

  setState(state: TrainerState): void {
    if (state.slots.length !== this.batch) {
      throw new FramewiseError(ErrorCodes.USAGE, `trainer: state has ${state.slots.length} slots, trainer has ${this.batch}`);
    }
    this.optimizer.setState(state.optimizer);
    this.slots = [...state.slots];
    this.dropoutSeed = state.dropoutSeed;
    this.rng = new SeededRandom(state.dropoutSeed);
  }

  dispose(): void {
    this.optimizer.dispose();
  }

  /** Inverted dropout: 0 with probability p, else 1/(1-p), so inference needs no rescaling. */
  private dropoutMask(n: number, p: number): Float32Array {
    const m = new Float32Array(n);
    const keep = 1 / (1 - p);
    for (let i = 0; i < n; i++) m[i] = this.rng.next() < p ? 0 : keep;
    return m;
  }
}

function argmax(a: ArrayLike<number>, offset: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (a[offset + j]! > a[offset + best]!) best = j;
  return best;
}
