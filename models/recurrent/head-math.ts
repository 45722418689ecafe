// The recurrent head's math: per frame, embedding -> optional linear projection -> dropout
// (training only) -> N recurrent layers -> a readout shared across time -> softmax over C classes.
// Causal and many-to-many: each frame's probabilities depend only on that frame and the carried
// state. Browser-safe (tfjs, our PRNG and plain data only: no Node modules, no process), so the
// server's head and the browser's on-device head are this one class; head.ts adds the defaults.
//
// Ownership: the head owns its weights (tf.Variables, freed by dispose()). Everything crossing its
// public inference API is plain data (Float32Array in, Float32Array + RecurrentState out); every
// tensor made inside a call is disposed before the call returns.
import * as tf from '@tensorflow/tfjs';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { gateCount, runLayer, type CellWeights, type RecurrentCellType } from './cells.ts';
import { SeededRandom } from '../../core/seeded-random.ts';
import { glorotUniform, orthogonalBlocks } from './init.ts';
import { normalizeInto } from './input-norm.ts';
import {
  assertStateFits,
  disposeStateTensors,
  stackStates,
  unstackStates,
  zeroState,
  type BatchedStateTensors,
  type CellType,
  type RecurrentState,
} from './state.ts';

export interface HeadSpec {
  /** Embedding length per frame (1280 for mobilenet_v2_1.0_224). */
  inputDim: number;
  /** Number of classes C (softmax width). */
  classes: number;
  /** 'lstm' (default), 'gru', or 'none' = frame-by-frame baseline (a tanh dense layer, no memory). */
  cell: CellType;
  /** Recurrent layers (>= 1); for 'none' the number of per-frame tanh layers. */
  layers: number;
  /** Hidden size H of every recurrent layer. */
  hidden: number;
  /** Width of the linear projection applied to the embedding first; 0 = no projection. */
  projection: number;
  /** Dropout probability on the (projected) embedding during training, in [0, 1). */
  dropout: number;
  /** Seed for the weight initialisation (our own PRNG, so identical on every backend). */
  seed: number;
  /** Rate α of the running mean subtracted from each input (input-norm.ts); 0 = off. */
  inputNorm: number;
  /** How many leading input values the running mean is subtracted from (the appearance part when a motion stream follows); absent: all. */
  inputNormDims?: number;
  /** Factor the values after `inputNormDims` (the motion stream) are multiplied by; absent: 1. */
  motionGain?: number;
}

export type HeadOptions = Partial<HeadSpec> & Pick<HeadSpec, 'inputDim' | 'classes'>;

/** Named weights in a fixed order; names match the layer/weight names of the exported layers model. */
export interface NamedWeight {
  name: string;
  shape: number[];
  values: Float32Array;
}

export interface StepResult {
  /** One probability vector (length C) per input frame. */
  probs: Float32Array[];
  state: RecurrentState;
}

export interface BatchStepResult {
  /** probs[b][t]: stream b's t-th frame of this call. */
  probs: Float32Array[][];
  states: RecurrentState[];
}

/** What the trainer needs from a forward pass over a time-major chunk. */
export interface ForwardResult {
  /** [T*B, C], row t*B + b. */
  logits: tf.Tensor2D;
  /** The state after the chunk, as tensors owned by the caller's tidy scope. */
  next: BatchedStateTensors;
}

/** A frame sequence: one Float32Array per frame, or all frames back to back in one array. */
export type FrameInput = readonly Float32Array[] | Float32Array;

export interface RecurrentHead {
  readonly spec: Readonly<HeadSpec>;
  /** Trainable weights in weightNames() order. */
  readonly variables: readonly tf.Variable[];
  weightNames(): string[];
  zeroState(): RecurrentState;
  /** Advances one stream by T >= 1 frames; chunking never changes the result. */
  step(state: RecurrentState, frames: FrameInput): StepResult;
  /** Advances several streams (each with its own state) in one batched call; T may differ per stream. */
  stepBatch(states: readonly RecurrentState[], frames: readonly FrameInput[]): BatchStepResult;
  /** Probabilities for a whole sequence from the zero state (fed in chunks of `chunk` frames). */
  predict(frames: FrameInput, chunk?: number): Float32Array[];
  /**
   * Training/eval forward over a time-major chunk (no tidy inside: call within tf.tidy or
   * tf.variableGrads). `dropoutMask` ([T*B, width of the dropout site], entries 0 or 1/(1-p))
   * switches on inverted dropout; without it the pass is deterministic (inference).
   */
  forward(x: tf.Tensor2D, T: number, B: number, state: BatchedStateTensors, dropoutMask?: tf.Tensor2D): ForwardResult;
  /** Width of the vector dropout applies to (projection size, or inputDim without projection). */
  readonly dropoutWidth: number;
  stackStates(states: readonly RecurrentState[]): BatchedStateTensors;
  getWeights(): NamedWeight[];
  setWeights(weights: readonly NamedWeight[]): void;
  dispose(): void;
}

/** Range-checks a complete spec and freezes a copy; never mutates the caller's object. */
export function checkHeadSpec(input: HeadSpec): HeadSpec {
  const spec: HeadSpec = { ...input };
  const bad = (what: string) => {
    throw new FramewiseError(ErrorCodes.USAGE, `recurrent head: ${what}`);
  };
  const posInt = (v: number) => Number.isInteger(v) && v > 0;
  if (!posInt(spec.inputDim)) bad(`inputDim must be a positive integer, got ${spec.inputDim}`);
  if (!posInt(spec.classes) || spec.classes < 2) bad(`classes must be an integer >= 2, got ${spec.classes}`);
  if (!['lstm', 'gru', 'none'].includes(spec.cell)) bad(`cell must be lstm, gru or none, got "${spec.cell}"`);
  if (!posInt(spec.layers)) bad(`layers must be a positive integer, got ${spec.layers}`);
  if (!posInt(spec.hidden)) bad(`hidden must be a positive integer, got ${spec.hidden}`);
  if (!(Number.isInteger(spec.projection) && spec.projection >= 0)) bad(`projection must be an integer >= 0, got ${spec.projection}`);
  if (!(spec.dropout >= 0 && spec.dropout < 1)) bad(`dropout must be in [0, 1), got ${spec.dropout}`);
  if (!Number.isInteger(spec.seed)) bad(`seed must be an integer, got ${spec.seed}`);
  if (!(spec.inputNorm >= 0 && spec.inputNorm <= 1)) bad(`inputNorm must be in [0, 1], got ${spec.inputNorm}`);
  if (spec.inputNormDims !== undefined && !(posInt(spec.inputNormDims) && spec.inputNormDims <= spec.inputDim))
    bad(`inputNormDims must be an integer in [1, inputDim], got ${spec.inputNormDims}`);
  if (spec.motionGain !== undefined && !(spec.motionGain > 0 && Number.isFinite(spec.motionGain) && spec.inputNormDims !== undefined))
    bad(`motionGain must be a positive number, with inputNormDims, got ${spec.motionGain}`);
  return Object.freeze(spec);
}

/**
 * Builds a head from a complete spec with seeded initial weights, or with `weights` (e.g. from a
 * bundle). Init: Glorot-uniform kernels, orthogonal recurrent kernels (per gate block), LSTM
 * forget-gate bias 1 (remember by default), and a readout scaled down 10x with zero bias so the
 * first softmax is near uniform and the initial loss is ~ln C.
 */
export function headFromSpec(spec: HeadSpec, weights?: readonly NamedWeight[]): RecurrentHead {
  return new Head(checkHeadSpec(spec), weights);
}

interface Layout {
  name: string;
  shape: number[];
  init: (rng: SeededRandom) => Float32Array;
}

function layout(spec: HeadSpec): Layout[] {
  const out: Layout[] = [];
  const zeros = (n: number) => () => new Float32Array(n);
  let width = spec.inputDim;
  if (spec.projection > 0) {
    const [i, o] = [width, spec.projection];
    out.push({ name: 'projection/kernel', shape: [i, o], init: (r) => glorotUniform(r, i, o) });
    out.push({ name: 'projection/bias', shape: [o], init: zeros(o) });
    width = spec.projection;
  }
  const H = spec.hidden;
  for (let l = 0; l < spec.layers; l++) {
    const i = width;
    if (spec.cell === 'none') {
      out.push({ name: `frame_${l}/kernel`, shape: [i, H], init: (r) => glorotUniform(r, i, H) });
      out.push({ name: `frame_${l}/bias`, shape: [H], init: zeros(H) });
    } else {
      const G = gateCount(spec.cell);
      out.push({ name: `rnn_${l}/kernel`, shape: [i, G * H], init: (r) => glorotUniform(r, i, G * H) });
      out.push({ name: `rnn_${l}/recurrent_kernel`, shape: [H, G * H], init: (r) => orthogonalBlocks(r, H, G * H) });
      const lstm = spec.cell === 'lstm';
      out.push({
        name: `rnn_${l}/bias`,
        shape: [G * H],
        // Gate order (i, f, c, o): the second block is the forget gate.
        init: () => (lstm ? new Float32Array(G * H).fill(1, H, 2 * H) : new Float32Array(G * H)),
      });
    }
    width = H;
  }
  const C = spec.classes;
  out.push({ name: 'readout/kernel', shape: [width, C], init: (r) => glorotUniform(r, width, C, 0.1) });
  out.push({ name: 'readout/bias', shape: [C], init: zeros(C) });
  return out;
}

class Head implements RecurrentHead {
  readonly spec: Readonly<HeadSpec>;
  readonly variables: tf.Variable[];
  readonly dropoutWidth: number;
  private readonly names: string[];
  private readonly shapes: number[][];
  private readonly byName: Map<string, tf.Variable>;
  private disposed = false;

  constructor(spec: HeadSpec, weights?: readonly NamedWeight[]) {
    this.spec = spec;
    this.dropoutWidth = spec.projection > 0 ? spec.projection : spec.inputDim;
    const plan = layout(spec);
    this.names = plan.map((p) => p.name);
    this.shapes = plan.map((p) => p.shape);
    const given = weights ? checkWeights(plan, weights) : undefined;
    const rng = new SeededRandom(spec.seed);
    this.variables = plan.map((p, k) => {
      // Always fork, so a weight's init does not depend on which others were given; computing an
      // init that given weights replace is skipped (the orthogonal ones took 0.45 s per bundle load).
      const own = rng.fork();
      const values = given ? given[k]! : p.init(own);
      return tf.tidy(() => tf.variable(tf.tensor(values, p.shape), true));
    });
    this.byName = new Map(this.names.map((n, k) => [n, this.variables[k]!]));
  }

  weightNames(): string[] {
    return [...this.names];
  }

  zeroState(): RecurrentState {
    return zeroState(this.spec);
  }

  stackStates(states: readonly RecurrentState[]): BatchedStateTensors {
    for (const s of states) assertStateFits(s, this.spec);
    return stackStates(states, this.spec);
  }

  forward(x: tf.Tensor2D, T: number, B: number, state: BatchedStateTensors, dropoutMask?: tf.Tensor2D): ForwardResult {
    this.assertAlive();
    const w = (n: string) => this.byName.get(n)!;
    let a: tf.Tensor2D = x;
    if (this.spec.projection > 0) a = tf.add(tf.matMul(a, w('projection/kernel')), w('projection/bias'));
    if (dropoutMask) a = tf.mul(a, dropoutMask);
    const next: BatchedStateTensors = { h: [], c: [] };
    for (let l = 0; l < this.spec.layers; l++) {
      if (this.spec.cell === 'none') {
        a = tf.tanh(tf.add(tf.matMul(a, w(`frame_${l}/kernel`)), w(`frame_${l}/bias`))) as tf.Tensor2D;
        continue;
      }
      const cw: CellWeights = {
        kernel: w(`rnn_${l}/kernel`) as unknown as tf.Tensor2D,
        recurrentKernel: w(`rnn_${l}/recurrent_kernel`) as unknown as tf.Tensor2D,
        bias: w(`rnn_${l}/bias`) as unknown as tf.Tensor1D,
      };
      const run = runLayer(this.spec.cell as RecurrentCellType, cw, a, T, state.h[l]!, state.c[l] ?? null, state.keep);
      next.h.push(run.h);
      next.c.push(run.c);
      a = run.ys;
    }
    const logits = tf.add(tf.matMul(a, w('readout/kernel')), w('readout/bias')) as tf.Tensor2D;
    return { logits, next };
  }

  step(state: RecurrentState, frames: FrameInput): StepResult {
    const { probs, states } = this.stepBatch([state], [frames]);
    return { probs: probs[0]!, state: states[0]! };
  }

  stepBatch(states: readonly RecurrentState[], frames: readonly FrameInput[]): BatchStepResult {
    this.assertAlive();
    if (states.length !== frames.length || states.length === 0) {
      throw new FramewiseError(ErrorCodes.USAGE, `stepBatch needs one frame list per state (got ${states.length} states, ${frames.length} frame lists)`);
    }
    const D = this.spec.inputDim;
    const B = states.length;
    const lengths = frames.map((f) => frameCount(f, D));
    const T = Math.max(...lengths);
    if (T < 1) throw new FramewiseError(ErrorCodes.USAGE, 'stepBatch needs at least one frame');
    // Time-major packing: row t*B + b; streams with fewer frames get zero rows that are masked out.
    const x = new Float32Array(T * B * D);
    // Normalised straight into x: no per-frame arrays.
    const means = frames.map((f, b) => {
      const list: Float32Array[] = [];
      forEachFrame(f, D, (v) => list.push(v));
      return normalizeInto(list, states[b]!.mean, this.spec, x, (t) => (t * B + b) * D);
    });
    const ragged = lengths.some((n) => n !== T);
    const C = this.spec.classes;
    const stacked = this.stackStates(states);
    let outs: tf.Tensor[] = [];
    try {
      outs = tf.tidy(() => {
        if (ragged) {
          stacked.keep = Array.from({ length: T }, (_, t) =>
            tf.tensor2d(
              Float32Array.from(lengths, (n) => (t < n ? 1 : 0)),
              [B, 1],
            ),
          );
        }
        const { logits, next } = this.forward(tf.tensor2d(x, [T * B, D]), T, B, stacked);
        return [tf.softmax(logits), ...next.h, ...next.c.filter((c): c is tf.Tensor2D => c !== null)];
      });
      const [p, ...rest] = outs.map((t) => t.dataSync() as Float32Array);
      const L = this.spec.cell === 'none' ? 0 : this.spec.layers;
      const hs = rest.slice(0, L);
      const cs = this.spec.cell === 'lstm' ? rest.slice(L, 2 * L) : hs.map(() => null);
      const probs = lengths.map((n, b) => Array.from({ length: n }, (_, t) => p!.slice((t * B + b) * C, (t * B + b + 1) * C)));
      const next = withMeans(
        unstackStates(
          hs,
          cs,
          this.spec,
          states.map((s) => s.frames),
          lengths,
        ),
        means,
      );
      return { probs, states: next };
    } finally {
      disposeStateTensors(stacked);
      for (const t of outs) t.dispose();
    }
  }

  predict(frames: FrameInput, chunk = Number.POSITIVE_INFINITY): Float32Array[] {
    const D = this.spec.inputDim;
    const n = frameCount(frames, D);
    const out: Float32Array[] = [];
    let state = this.zeroState();
    const size = Math.max(1, Math.min(chunk, n));
    for (let s = 0; s < n; s += size) {
      const part = Array.isArray(frames)
        ? (frames as readonly Float32Array[]).slice(s, s + size)
        : (frames as Float32Array).subarray(s * D, Math.min(n, s + size) * D);
      const r = this.step(state, part);
      out.push(...r.probs);
      state = r.state;
    }
    return out;
  }

  getWeights(): NamedWeight[] {
    this.assertAlive();
    return this.variables.map((v, k) => ({
      name: this.names[k]!,
      shape: [...this.shapes[k]!],
      values: v.dataSync().slice() as Float32Array,
    }));
  }

  setWeights(weights: readonly NamedWeight[]): void {
    this.assertAlive();
    const values = checkWeights(layout(this.spec), weights);
    this.variables.forEach((v, k) => tf.tidy(() => v.assign(tf.tensor(values[k]!, this.shapes[k]!))));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables) v.dispose();
  }

  private assertAlive(): void {
    if (this.disposed) throw new FramewiseError(ErrorCodes.USAGE, 'recurrent head used after dispose()');
  }
}

function checkWeights(plan: Layout[], weights: readonly NamedWeight[]): Float32Array[] {
  const map = new Map(weights.map((w) => [w.name, w]));
  return plan.map((p) => {
    const w = map.get(p.name);
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (!w) throw new FramewiseError(ErrorCodes.MODEL_INVALID, `weights: "${p.name}" is missing`);
    if (w.values.length !== n || w.shape.join('x') !== p.shape.join('x')) {
      throw new FramewiseError(ErrorCodes.MODEL_INVALID, `weights: "${p.name}" has shape [${w.shape}] (${w.values.length} values), expected [${p.shape}]`);
    }
    return w.values;
  });
}

function frameCount(f: FrameInput, D: number): number {
  if (f instanceof Float32Array) {
    if (f.length % D !== 0) {
      throw new FramewiseError(ErrorCodes.USAGE, `frame data of length ${f.length} is not a multiple of the embedding dim ${D}`);
    }
    return f.length / D;
  }
  for (const v of f) {
    if (v.length !== D) {
      throw new FramewiseError(ErrorCodes.USAGE, `embedding has ${v.length} values, this head expects ${D}`);
    }
  }
  return f.length;
}

function forEachFrame(f: FrameInput, D: number, fn: (v: Float32Array, t: number) => void): void {
  if (f instanceof Float32Array) {
    for (let t = 0; t < f.length / D; t++) fn(f.subarray(t * D, (t + 1) * D), t);
  } else {
    f.forEach(fn);
  }
}

/** Attaches each stream's running input mean to its new state (states are frozen values). */
export function withMeans(states: RecurrentState[], means: readonly (Float32Array | undefined)[]): RecurrentState[] {
  return states.map((st, b) => (means[b] ? Object.freeze({ ...st, mean: means[b] }) : st));
}
