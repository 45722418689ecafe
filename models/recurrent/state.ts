// The recurrent state of ONE stream as plain Float32Arrays: it crosses calls (chunks, sessions,
// training steps) and must never hold a tensor, so nothing needs disposing and a state can be
// copied, stored in a checkpoint or sent to another thread. Values are treated as immutable: a step
// returns a new state and never writes into the one it was given.
import * as tf from '@tensorflow/tfjs';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';

/** 'none' is the frame-by-frame baseline: no recurrence, an empty state. */
export type CellType = 'lstm' | 'gru' | 'none';

export interface LayerState {
  /** Hidden (short-term) state, length = hidden size. */
  readonly h: Float32Array;
  /** LSTM cell (long-term) state, length = hidden size; absent for GRU. */
  readonly c?: Float32Array;
}

export interface RecurrentState {
  readonly cell: CellType;
  readonly hidden: number;
  /** One entry per recurrent layer, bottom first; empty for 'none'. */
  readonly layers: readonly LayerState[];
  /** Frames consumed since the zero state (useful for warm-up logic and debugging). */
  readonly frames: number;
  /** Running mean of the stream's inputs for input normalisation (input-norm.ts); absent at the start. */
  readonly mean?: Float32Array;
}

export interface StateShape {
  cell: CellType;
  layers: number;
  hidden: number;
}

/** h0 = c0 = 0: the state at the start of every stream. */
export function zeroState(shape: StateShape): RecurrentState {
  const layers: LayerState[] = [];
  if (shape.cell !== 'none') {
    for (let l = 0; l < shape.layers; l++) {
      layers.push(shape.cell === 'lstm' ? { h: new Float32Array(shape.hidden), c: new Float32Array(shape.hidden) } : { h: new Float32Array(shape.hidden) });
    }
  }
  return Object.freeze({ cell: shape.cell, hidden: shape.hidden, layers: Object.freeze(layers), frames: 0 });
}

/** Throws E_USAGE when a state was made for another head (cell type, depth or width differ). */
export function assertStateFits(state: RecurrentState, shape: StateShape): void {
  const layers = shape.cell === 'none' ? 0 : shape.layers;
  const ok =
    state.cell === shape.cell &&
    state.layers.length === layers &&
    state.layers.every((l) => l.h.length === shape.hidden && (shape.cell === 'lstm' ? l.c?.length === shape.hidden : l.c === undefined));
  if (!ok) {
    throw new FramewiseError(
      ErrorCodes.USAGE,
      `recurrent state (${state.cell}, ${state.layers.length} layers, hidden ${state.hidden}) does not fit ` +
        `this head (${shape.cell}, ${layers} layers, hidden ${shape.hidden}); start from head.zeroState()`,
    );
  }
}

/** Per layer, the states of B streams stacked as [B, H] tensors (c is null for GRU). */
export interface BatchedStateTensors {
  h: tf.Tensor2D[];
  c: (tf.Tensor2D | null)[];
  /**
   * For ragged batches, per step a [B, 1] 0/1 tensor: 0 where a stream has no frame at that step,
   * so its state is held. Absent when every stream has every step.
   */
  keep?: tf.Tensor2D[];
}

/**
 * Stacks B stream states into tensors for one batched step. The tensors are fresh values with no
 * gradient path: this is what makes truncated BPTT "detached" across chunks.
 */
export function stackStates(states: readonly RecurrentState[], shape: StateShape): BatchedStateTensors {
  const B = states.length;
  const H = shape.hidden;
  const out: BatchedStateTensors = { h: [], c: [] };
  const layers = shape.cell === 'none' ? 0 : shape.layers;
  for (let l = 0; l < layers; l++) {
    const h = new Float32Array(B * H);
    const c = shape.cell === 'lstm' ? new Float32Array(B * H) : null;
    states.forEach((s, b) => {
      h.set(s.layers[l]!.h, b * H);
      if (c) c.set(s.layers[l]!.c!, b * H);
    });
    out.h.push(tf.tensor2d(h, [B, H]));
    out.c.push(c ? tf.tensor2d(c, [B, H]) : null);
  }
  return out;
}

/** Splits batched per-layer values (already read back, [B * H] each) into B new stream states. */
export function unstackStates(
  h: readonly Float32Array[],
  c: readonly (Float32Array | null)[],
  shape: StateShape,
  framesBefore: readonly number[],
  framesAdded: readonly number[],
): RecurrentState[] {
  const B = framesBefore.length;
  const H = shape.hidden;
  const out: RecurrentState[] = [];
  for (let b = 0; b < B; b++) {
    const layers: LayerState[] = h.map((hl, l) => {
      const cl = c[l];
      return cl ? { h: hl.slice(b * H, (b + 1) * H), c: cl.slice(b * H, (b + 1) * H) } : { h: hl.slice(b * H, (b + 1) * H) };
    });
    out.push(
      Object.freeze({
        cell: shape.cell,
        hidden: H,
        layers: Object.freeze(layers),
        frames: framesBefore[b]! + framesAdded[b]!,
      }),
    );
  }
  return out;
}

export function disposeStateTensors(t: BatchedStateTensors): void {
  for (const x of t.h) x.dispose();
  for (const x of t.c) x?.dispose();
}
