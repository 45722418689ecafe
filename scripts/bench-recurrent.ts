// Training throughput of the recurrent head, in one run, next to two references:
//   1. our TBPTT step (hand-written backward, models/recurrent/backprop.ts) + AdamW + clipping;
//   2. the same head through tfjs autodiff (tf.variableGrads on head.forward) + the same optimizer;
//   3. stock tf.layers: a stateful tf.layers.lstm + timeDistributed dense, model.trainOnBatch;
//   4. plain matMuls with the same FLOP count as (1), the compute floor on this backend.
// Workload: B = 8 sequences, chunk k = 32, H = 256, 1280-d embeddings.
// Run: npx tsx scripts/bench-recurrent.ts [--iters N] [--cell lstm|gru]   (prints numbers, not a test)
import * as tf from '@tensorflow/tfjs';
import { ensureBackend } from '../models/backend.ts';
import { createHead } from '../models/recurrent/head.ts';
import { AdamW } from '../models/recurrent/optimizer.ts';
import { SeededRandom } from '../core/seeded-random.ts';
import { createTrainer } from '../models/recurrent/trainer.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const B = 8,
  K = 32,
  H = 256,
  D = 1280,
  C = 10;
const ITERS = Number(arg('iters', '4'));
const cell = arg('cell', 'lstm') as 'lstm' | 'gru';
const N = B * K;

const choice = await ensureBackend();
const rng = new SeededRandom(1);
const inputs = Float32Array.from({ length: N * D }, () => rng.next());
const labels = Int32Array.from({ length: N }, () => rng.int(C));

/** Mean seconds per call after `warm` untimed calls. */
function time(fn: () => void, iters = ITERS, warm = 1): number {
  for (let i = 0; i < warm; i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  return (performance.now() - t0) / 1000 / iters;
}
const fps = (sec: number) => (N / sec).toFixed(0).padStart(7);
const rows: [string, number][] = [];
const report = (name: string, sec: number) => {
  rows.push([name, sec]);
  console.log(`${name.padEnd(46)} ${(sec * 1000).toFixed(1).padStart(8)} ms/step ${fps(sec)} frames/s`);
};

console.log(`bench-recurrent: backend ${choice.name}, ${cell}, B=${B} k=${K} H=${H} D=${D} C=${C}, ${ITERS} timed steps each`);

// 1. ours
const head = createHead({ inputDim: D, classes: C, cell, hidden: H, layers: 1, dropout: 0, seed: 1 });
const trainer = createTrainer(head, { batch: B, clip: 1, schedule: { learningRate: 1e-3 } });
const before = tf.memory().numTensors;
const ours = time(() => trainer.step({ steps: K, inputs, labels }));
if (tf.memory().numTensors !== before) console.log(`warning: tensor count grew by ${tf.memory().numTensors - before}`);
report('ours: hand-written TBPTT + AdamW + clip', ours);

// 2. same head, tfjs autodiff
{
  const opt = new AdamW(head.variables, head.weightNames());
  const x = new Float32Array(N * D);
  for (let b = 0; b < B; b++) for (let t = 0; t < K; t++) x.set(inputs.subarray((b * K + t) * D, (b * K + t + 1) * D), (t * B + b) * D);
  const sec = time(() => {
    tf.tidy(() => {
      const xt = tf.tensor2d(x, [N, D]);
      const oh = tf.oneHot(tf.tensor1d(labels, 'int32'), C).toFloat();
      const state = head.stackStates(trainer.slots);
      const { value, grads } = tf.variableGrads(() => {
        const { logits } = head.forward(xt, K, B, state);
        return tf.losses.softmaxCrossEntropy(oh, logits) as tf.Scalar;
      }, head.variables as tf.Variable[]);
      opt.apply(
        head.variables.map((v) => grads[v.name]!),
        1e-3,
      );
      value.dataSync();
    });
  });
  opt.dispose();
  report('same head, tf.variableGrads autodiff', sec);
}
trainer.dispose();
head.dispose();

// 3. stock tf.layers
{
  const model = tf.sequential({
    layers: [
      (cell === 'lstm' ? tf.layers.lstm : tf.layers.gru)({
        units: H,
        returnSequences: true,
        stateful: true,
        recurrentActivation: 'sigmoid',
        batchInputShape: [B, K, D],
      }),
      tf.layers.timeDistributed({ layer: tf.layers.dense({ units: C, activation: 'softmax' }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
  const xs = tf.tensor3d(inputs, [B, K, D]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor2d(labels, [B, K], 'int32'), C).toFloat());
  let pending: Promise<unknown> = Promise.resolve();
  // trainOnBatch is async; time whole awaited steps.
  const stepAsync = () => (pending = pending.then(() => model.trainOnBatch(xs, ys)));
  await stepAsync();
  const t0 = performance.now();
  for (let i = 0; i < Math.max(2, Math.ceil(ITERS / 2)); i++) await stepAsync();
  const sec = (performance.now() - t0) / 1000 / Math.max(2, Math.ceil(ITERS / 2));
  report(`tf.layers.${cell} (stateful) + trainOnBatch`, sec);
  xs.dispose();
  ys.dispose();
  model.dispose();
}

// 4. plain matMul with the FLOPs of our step
{
  const G = cell === 'lstm' ? 4 : 3;
  // forward: x W, h U, readout; backward: dW, dU, per-step dh, readout kernel + input.
  const flops = 2 * N * G * H * (2 * D + 3 * H) + 6 * N * H * C;
  const unit = 2 * N * D * G * H;
  const reps = flops / unit;
  const a = tf.randomUniform([N, D]) as tf.Tensor2D;
  const w = tf.randomUniform([D, G * H]) as tf.Tensor2D;
  const one = time(() => tf.tidy(() => void tf.matMul(a, w).dataSync()), ITERS * 2);
  report(`plain matMul, same FLOPs (${(flops / 1e9).toFixed(2)} GFLOP)`, one * reps);
  console.log(`  (one ${N}x${D}x${G * H} matMul: ${(one * 1000).toFixed(1)} ms = ${(unit / one / 1e9).toFixed(1)} GFLOP/s)`);
  a.dispose();
  w.dispose();
}

const get = (prefix: string) => rows.find(([n]) => n.startsWith(prefix))![1];
console.log('ratios (higher = ours faster):');
console.log(`  ours vs tf.layers        ${(get('tf.layers') / ours).toFixed(2)}x`);
console.log(`  ours vs autodiff         ${(get('same head') / ours).toFixed(2)}x`);
console.log(`  ours vs plain matMul     ${(get('plain') / ours).toFixed(2)}x  (1.00 = at the FLOP floor)`);
console.log('note: shared 2-core machine, single-threaded backend; numbers vary with other load.');
