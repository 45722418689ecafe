// Adam with decoupled weight decay (AdamW, Loshchilov & Hutter 2019) on explicit gradients.
// Our own (instead of tf.train.adam) because the trainer clips and schedules the rate per step,
// needs decoupled decay that skips biases, and must checkpoint the moments for --resume.
import * as tf from '@tensorflow/tfjs';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled decay per step, multiplied by the current learning rate; 0 = plain Adam. */
  weightDecay?: number;
  /** Which parameters decay (by name); default: everything except biases. */
  decays?: (name: string) => boolean;
}

/** Moments and step count as plain arrays, for checkpoints. */
export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  /** Updates applied so far (the t of the bias correction). */
  step = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly decayMask: boolean[];

  constructor(
    private readonly params: readonly tf.Variable[],
    names: readonly string[],
    options: AdamWOptions = {},
  ) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    const decays = options.decays ?? ((n: string) => !n.endsWith('/bias'));
    this.decayMask = names.map(decays);
    this.m = params.map((p) => tf.variable(tf.zerosLike(p), false));
    this.v = params.map((p) => tf.variable(tf.zerosLike(p), false));
  }

  /** One update with gradients in parameter order; the gradients stay owned by the caller. */
  apply(grads: readonly tf.Tensor[], learningRate: number): void {
    this.step += 1;
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    // Folding both bias corrections into the step size: lr_t = lr * sqrt(c2) / c1.
    const stepSize = (learningRate * Math.sqrt(c2)) / c1;
    const epsHat = this.epsilon * Math.sqrt(c2);
    tf.tidy(() => {
      this.params.forEach((p, k) => {
        const g = grads[k]!;
        const m = tf.add(tf.mul(this.m[k]!, this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(this.v[k]!, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        this.m[k]!.assign(m);
        this.v[k]!.assign(v);
        let next = tf.sub(p, tf.mul(tf.div(m, tf.add(tf.sqrt(v), epsHat)), stepSize));
        if (this.weightDecay > 0 && this.decayMask[k]) next = tf.sub(next, tf.mul(p, learningRate * this.weightDecay));
        p.assign(next);
      });
    });
  }

  getState(): AdamWState {
    return {
      step: this.step,
      m: this.m.map((t) => t.dataSync().slice() as Float32Array),
      v: this.v.map((t) => t.dataSync().slice() as Float32Array),
    };
  }

  setState(state: AdamWState): void {
    this.step = state.step;
    tf.tidy(() => {
      this.m.forEach((t, k) => t.assign(tf.tensor(state.m[k]!, t.shape)));
      this.v.forEach((t, k) => t.assign(tf.tensor(state.v[k]!, t.shape)));
    });
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
