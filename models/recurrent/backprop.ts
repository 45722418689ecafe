// Hand-written forward + backward (truncated BPTT) for one training chunk of the head.
//
// Why not tf.variableGrads on head.forward(): tfjs' autodiff of matMul computes its gradients as
// matMul(.., transposeA/B), and the wasm backend runs transposed products 10-20x slower than plain
// ones; autodiff also computes dU as T small products (one per step) and re-packs U^T every step.
// Here every transpose is explicit and done once, U^T is shared by all steps of the backward loop
// (the wasm matMul caches its packed right-hand matrix), dU and dW are one product each over the
// whole chunk, and no gradient is computed for the input embeddings. test/models/recurrent/
// backprop.test.ts checks these gradients against tf.variableGrads on head.forward().
//
// Layout: rows are time-major (row t*B + b = frame t of stream b). The state entering the chunk is
// a value (no gradient flows to earlier chunks) and the state leaving it gets no gradient (TBPTT).
import * as tf from '@tensorflow/tfjs';
import type { RecurrentHead } from './head.ts';
import type { BatchedStateTensors } from './state.ts';

export interface ChunkTensors {
  /** [T*B, D] embeddings, time-major. */
  x: tf.Tensor2D;
  /** [T*B, C] one-hot labels (all-zero rows for masked frames). */
  onehot: tf.Tensor2D;
  /** [T*B, 1] loss weights: 1 for counted frames, 0 for padding. */
  mask: tf.Tensor2D;
  T: number;
  B: number;
  /** Inverted-dropout mask [T*B, head.dropoutWidth] (0 or 1/(1-p)); absent = no dropout. */
  dropoutMask?: tf.Tensor2D;
}

export interface ChunkGradients {
  /** Mean cross-entropy over counted frames (scalar). */
  loss: tf.Scalar;
  /** [T*B, C]. */
  logits: tf.Tensor2D;
  /** Gradients in head.weightNames() order. */
  grads: tf.Tensor[];
  /** State after the chunk (values, to be read back and carried). */
  next: BatchedStateTensors;
}

interface LstmTape {
  kind: 'lstm';
  input: tf.Tensor2D;
  i: tf.Tensor2D[];
  f: tf.Tensor2D[];
  g: tf.Tensor2D[];
  o: tf.Tensor2D[];
  cPrev: tf.Tensor2D[];
  tanhC: tf.Tensor2D[];
  hPrev: tf.Tensor2D[];
}

interface GruTape {
  kind: 'gru';
  input: tf.Tensor2D;
  z: tf.Tensor2D[];
  r: tf.Tensor2D[];
  hh: tf.Tensor2D[];
  hPrev: tf.Tensor2D[];
  rh: tf.Tensor2D[];
}

interface DenseTape {
  kind: 'none';
  input: tf.Tensor2D;
  out: tf.Tensor2D;
}

type Tape = LstmTape | GruTape | DenseTape;

/**
 * Forward and backward for one chunk. Not tidied inside: call within tf.tidy and keep what you
 * return (the trainer does).
 */
export function chunkGradients(head: RecurrentHead, chunk: ChunkTensors, state: BatchedStateTensors): ChunkGradients {
  const { spec } = head;
  const names = head.weightNames();
  const vars = new Map(names.map((n, k) => [n, head.variables[k]! as unknown as tf.Tensor]));
  const w = (n: string) => vars.get(n)! as tf.Tensor2D;
  const { T } = chunk;
  const H = spec.hidden;
  const t2 = (x: tf.Tensor) => x as tf.Tensor2D;

  // ---- forward, keeping what the backward pass needs ----
  let a: tf.Tensor2D = chunk.x;
  if (spec.projection > 0) a = t2(tf.add(tf.matMul(a, w('projection/kernel')), w('projection/bias')));
  if (chunk.dropoutMask) a = t2(tf.mul(a, chunk.dropoutMask));
  const tapes: Tape[] = [];
  const next: BatchedStateTensors = { h: [], c: [] };
  for (let l = 0; l < spec.layers; l++) {
    const input = a;
    if (spec.cell === 'none') {
      const out = t2(tf.tanh(tf.add(tf.matMul(input, w(`frame_${l}/kernel`)), w(`frame_${l}/bias`))));
      tapes.push({ kind: 'none', input, out });
      a = out;
      continue;
    }
    const xw = tf.add(tf.matMul(input, w(`rnn_${l}/kernel`)), w(`rnn_${l}/bias`));
    const steps = (T === 1 ? [xw] : tf.split(xw, T, 0)) as tf.Tensor2D[];
    const U = w(`rnn_${l}/recurrent_kernel`);
    let h = state.h[l]!;
    const hs: tf.Tensor2D[] = [];
    if (spec.cell === 'lstm') {
      let c = state.c[l]!;
      const tape: LstmTape = { kind: 'lstm', input, i: [], f: [], g: [], o: [], cPrev: [], tanhC: [], hPrev: [] };
      for (let t = 0; t < T; t++) {
        const z = tf.add(steps[t]!, tf.matMul(h, U));
        const [zi, zf, zg, zo] = tf.split(z, 4, 1);
        const i = t2(tf.sigmoid(zi!));
        const f = t2(tf.sigmoid(zf!));
        const g = t2(tf.tanh(zg!));
        const o = t2(tf.sigmoid(zo!));
        const cNew = t2(tf.add(tf.mul(f, c), tf.mul(i, g)));
        const tanhC = t2(tf.tanh(cNew));
        (tape.i.push(i), tape.f.push(f), tape.g.push(g), tape.o.push(o));
        (tape.cPrev.push(c), tape.tanhC.push(tanhC), tape.hPrev.push(h));
        c = cNew;
        h = t2(tf.mul(o, tanhC));
        hs.push(h);
      }
      tapes.push(tape);
      next.c.push(c);
    } else {
      const [uzr, uh] = tf.split(U, [2 * H, H], 1) as [tf.Tensor2D, tf.Tensor2D];
      const tape: GruTape = { kind: 'gru', input, z: [], r: [], hh: [], hPrev: [], rh: [] };
      for (let t = 0; t < T; t++) {
        const [xz, xr, xh] = tf.split(steps[t]!, 3, 1);
        const [hz, hr] = tf.split(tf.matMul(h, uzr), 2, 1);
        const z = t2(tf.sigmoid(tf.add(xz!, hz!)));
        const r = t2(tf.sigmoid(tf.add(xr!, hr!)));
        const rh = t2(tf.mul(r, h));
        const hh = t2(tf.tanh(tf.add(xh!, tf.matMul(rh, uh))));
        (tape.z.push(z), tape.r.push(r), tape.hh.push(hh), tape.hPrev.push(h), tape.rh.push(rh));
        h = t2(tf.add(hh, tf.mul(z, tf.sub(h, hh))));
        hs.push(h);
      }
      tapes.push(tape);
      next.c.push(null);
    }
    next.h.push(h);
    a = T === 1 ? hs[0]! : t2(tf.concat(hs, 0));
  }
  const logits = t2(tf.add(tf.matMul(a, w('readout/kernel')), w('readout/bias')));

  // ---- loss: mean cross-entropy over counted frames ----
  const count = tf.maximum(tf.sum(chunk.mask), 1);
  const logp = tf.logSoftmax(logits);
  const loss = tf.div(tf.neg(tf.sum(tf.mul(logp, chunk.onehot))), count) as tf.Scalar;

  // ---- backward ----
  const grads = new Map<string, tf.Tensor>();
  const T_ = (x: tf.Tensor2D) => tf.transpose(x) as tf.Tensor2D;
  // d loss / d logits = (softmax - onehot) * mask / count
  const dLogits = t2(tf.div(tf.mul(tf.sub(tf.exp(logp), chunk.onehot), chunk.mask), count));
  grads.set('readout/kernel', tf.matMul(T_(a), dLogits));
  grads.set('readout/bias', tf.sum(dLogits, 0));
  let dA = t2(tf.matMul(dLogits, T_(w('readout/kernel'))));

  const needInputGrad = (l: number) => l > 0 || spec.projection > 0;
  for (let l = spec.layers - 1; l >= 0; l--) {
    const tape = tapes[l]!;
    if (tape.kind === 'none') {
      const dPre = t2(tf.mul(dA, tf.sub(1, tf.square(tape.out))));
      grads.set(`frame_${l}/kernel`, tf.matMul(T_(tape.input), dPre));
      grads.set(`frame_${l}/bias`, tf.sum(dPre, 0));
      if (needInputGrad(l)) dA = t2(tf.matMul(dPre, T_(w(`frame_${l}/kernel`))));
      continue;
    }
    const dYs = (T === 1 ? [dA] : tf.split(dA, T, 0)) as tf.Tensor2D[];
    const U = w(`rnn_${l}/recurrent_kernel`);
    const dZs: tf.Tensor2D[] = new Array(T);
    let dhNext: tf.Tensor2D | null = null;
    let dU: tf.Tensor;
    if (tape.kind === 'lstm') {
      const UT = T_(U);
      let dcNext: tf.Tensor2D | null = null;
      for (let t = T - 1; t >= 0; t--) {
        const [i, f, g, o, tanhC, cPrev] = [tape.i[t]!, tape.f[t]!, tape.g[t]!, tape.o[t]!, tape.tanhC[t]!, tape.cPrev[t]!];
        const dh = dhNext ? tf.add(dYs[t]!, dhNext) : dYs[t]!;
        const dzo = tf.mul(tf.mul(dh, tanhC), tf.mul(o, tf.sub(1, o)));
        let dc = tf.mul(tf.mul(dh, o), tf.sub(1, tf.square(tanhC)));
        if (dcNext) dc = tf.add(dc, dcNext);
        const dzi = tf.mul(tf.mul(dc, g), tf.mul(i, tf.sub(1, i)));
        const dzf = tf.mul(tf.mul(dc, cPrev), tf.mul(f, tf.sub(1, f)));
        const dzg = tf.mul(tf.mul(dc, i), tf.sub(1, tf.square(g)));
        dcNext = t2(tf.mul(dc, f));
        const dz = t2(tf.concat([dzi, dzf, dzg, dzo], 1));
        dZs[t] = dz;
        if (t > 0) dhNext = t2(tf.matMul(dz, UT));
      }
      const dZ = T === 1 ? dZs[0]! : t2(tf.concat(dZs, 0));
      const hPrev = T === 1 ? tape.hPrev[0]! : t2(tf.concat(tape.hPrev, 0));
      dU = tf.matMul(T_(hPrev), dZ);
      dA = finishLayer(l, tape.input, dZ);
    } else {
      const [uzr, uh] = tf.split(U, [2 * H, H], 1) as [tf.Tensor2D, tf.Tensor2D];
      const [uzrT, uhT] = [T_(uzr), T_(uh)];
      const dZRs: tf.Tensor2D[] = new Array(T);
      const dAHs: tf.Tensor2D[] = new Array(T);
      for (let t = T - 1; t >= 0; t--) {
        const [z, r, hh, hPrev] = [tape.z[t]!, tape.r[t]!, tape.hh[t]!, tape.hPrev[t]!];
        const dh = dhNext ? tf.add(dYs[t]!, dhNext) : dYs[t]!;
        const dah = tf.mul(tf.mul(dh, tf.sub(1, z)), tf.sub(1, tf.square(hh)));
        const dzp = tf.mul(tf.mul(dh, tf.sub(hPrev, hh)), tf.mul(z, tf.sub(1, z)));
        const drh = tf.matMul(dah, uhT);
        const drp = tf.mul(tf.mul(drh, hPrev), tf.mul(r, tf.sub(1, r)));
        const dzr = t2(tf.concat([dzp, drp], 1));
        dZRs[t] = dzr;
        dAHs[t] = t2(dah);
        dZs[t] = t2(tf.concat([dzr, dah], 1));
        if (t > 0) dhNext = t2(tf.add(tf.add(tf.mul(dh, z), tf.mul(drh, r)), tf.matMul(dzr, uzrT)));
      }
      const cat = (xs: tf.Tensor2D[]) => (T === 1 ? xs[0]! : t2(tf.concat(xs, 0)));
      const dUzr = tf.matMul(T_(cat(tape.hPrev)), cat(dZRs));
      const dUh = tf.matMul(T_(cat(tape.rh)), cat(dAHs));
      dU = tf.concat([dUzr, dUh], 1);
      dA = finishLayer(l, tape.input, cat(dZs));
    }
    grads.set(`rnn_${l}/recurrent_kernel`, dU);
  }

  /** Kernel and bias gradients of layer l from its pre-activation gradient; returns d input. */
  function finishLayer(l: number, input: tf.Tensor2D, dZ: tf.Tensor2D): tf.Tensor2D {
    grads.set(`rnn_${l}/kernel`, tf.matMul(T_(input), dZ));
    grads.set(`rnn_${l}/bias`, tf.sum(dZ, 0));
    // The embeddings are constants: skip the largest product of the backward pass when possible.
    return needInputGrad(l) ? t2(tf.matMul(dZ, T_(w(`rnn_${l}/kernel`)))) : dZ;
  }

  if (spec.projection > 0) {
    const dP = chunk.dropoutMask ? t2(tf.mul(dA, chunk.dropoutMask)) : dA;
    grads.set('projection/kernel', tf.matMul(T_(chunk.x), dP));
    grads.set('projection/bias', tf.sum(dP, 0));
  }
  return { loss, logits, grads: names.map((n) => grads.get(n)!), next };
}
