// LSTM and GRU cell math on explicit weights, written on tf ops (not tf.layers) so the state is a
// plain input and output and the chunk loop does the least work per step.
//
// Layout and gate order follow Keras / tf.layers exactly, so a bundle's weights load unchanged into
// stock tf.layers.lstm / tf.layers.gru (see bundle.ts):
//   LSTM: kernel [in, 4H], recurrentKernel [H, 4H], bias [4H], gates (i, f, c~, o), sigmoid / tanh
//         c_t = f ⊙ c_{t-1} + i ⊙ tanh(z_c);  h_t = o ⊙ tanh(c_t)
//   GRU (tf.layers' reset-before-matmul variant): kernel [in, 3H], recurrentKernel [H, 3H],
//         bias [3H], gates (z, r, h~)
//         z = σ(x W_z + h U_z + b_z);  r = σ(x W_r + h U_r + b_r)
//         h~ = tanh(x W_h + (r ⊙ h) U_h + b_h);  h_t = z ⊙ h_{t-1} + (1 − z) ⊙ h~
//
// Speed: the input-to-hidden product x W + b runs as ONE matMul over all T frames and B streams of a
// chunk (rows in time-major order t*B + b); only h U runs per step. Functions here do not tidy:
// the caller owns a tf.tidy or tf.variableGrads scope so gradients can flow through.
import * as tf from '@tensorflow/tfjs';

export type RecurrentCellType = 'lstm' | 'gru';

export interface CellWeights {
  /** [in, G*H], G = 4 (LSTM) or 3 (GRU). */
  kernel: tf.Tensor2D;
  /** [H, G*H]. */
  recurrentKernel: tf.Tensor2D;
  /** [G*H]. */
  bias: tf.Tensor1D;
}

export function gateCount(cell: RecurrentCellType): number {
  return cell === 'lstm' ? 4 : 3;
}

export interface LayerRun {
  /** Hidden outputs for every frame, [T*B, H], time-major rows. */
  ys: tf.Tensor2D;
  h: tf.Tensor2D;
  c: tf.Tensor2D | null;
}

/**
 * Runs one recurrent layer over a chunk.
 * @param xs  inputs [T*B, in], row t*B + b is frame t of stream b
 * @param h0  [B, H] state before the chunk (a value: no gradient flows into earlier chunks)
 * @param c0  [B, H] LSTM cell state, null for GRU
 * @param keep per step a [B, 1] 0/1 tensor, or undefined when every stream has all T frames; where
 *             0 the stream has no frame at this step and its state is held unchanged
 */
export function runLayer(
  cell: RecurrentCellType,
  w: CellWeights,
  xs: tf.Tensor2D,
  T: number,
  h0: tf.Tensor2D,
  c0: tf.Tensor2D | null,
  keep?: readonly tf.Tensor2D[],
): LayerRun {
  const H = w.recurrentKernel.shape[0];
  // One big product for the whole chunk; this is where most FLOPs go when in >> H.
  const xw = tf.add(tf.matMul(xs, w.kernel), w.bias);
  const perStep = T === 1 ? [xw] : tf.split(xw, T, 0);
  const hs: tf.Tensor2D[] = [];
  let h = h0;
  let c = c0;
  if (cell === 'lstm') {
    if (!c) throw new Error('LSTM layer needs a cell state');
    for (let t = 0; t < T; t++) {
      const z = tf.add(perStep[t]!, tf.matMul(h, w.recurrentKernel));
      const [zi, zf, zc, zo] = tf.split(z, 4, 1);
      const cNew = tf.add(tf.mul(tf.sigmoid(zf!), c), tf.mul(tf.sigmoid(zi!), tf.tanh(zc!)));
      const hNew = tf.mul(tf.sigmoid(zo!), tf.tanh(cNew));
      if (keep) {
        c = hold(keep[t]!, cNew, c);
        h = hold(keep[t]!, hNew, h);
      } else {
        c = cNew as tf.Tensor2D;
        h = hNew as tf.Tensor2D;
      }
      hs.push(h);
    }
  } else {
    // Split U once per chunk, not per step.
    const [uzr, uh] = tf.split(w.recurrentKernel, [2 * H, H], 1) as [tf.Tensor2D, tf.Tensor2D];
    for (let t = 0; t < T; t++) {
      const [xz, xr, xh] = tf.split(perStep[t]!, 3, 1);
      const [hz, hr] = tf.split(tf.matMul(h, uzr), 2, 1);
      const z = tf.sigmoid(tf.add(xz!, hz!));
      const r = tf.sigmoid(tf.add(xr!, hr!));
      const hh = tf.tanh(tf.add(xh!, tf.matMul(tf.mul(r, h), uh)));
      // z ⊙ h + (1 − z) ⊙ h~  ==  h~ + z ⊙ (h − h~): one op fewer per step.
      const hNew = tf.add(hh, tf.mul(z, tf.sub(h, hh))) as tf.Tensor2D;
      h = keep ? hold(keep[t]!, hNew, h) : hNew;
      hs.push(h);
    }
  }
  const ys = (T === 1 ? hs[0]! : tf.concat(hs, 0)) as tf.Tensor2D;
  return { ys, h, c };
}

/** keep ? next : prev, per stream row. */
function hold(keep: tf.Tensor2D, next: tf.Tensor, prev: tf.Tensor2D): tf.Tensor2D {
  return tf.add(prev, tf.mul(keep, tf.sub(next, prev))) as tf.Tensor2D;
}
