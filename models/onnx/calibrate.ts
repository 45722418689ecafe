// Activation ranges for the int8 export: the BN-folded fp32 graph is run on real frames with every
// tensor the quantizer needs exposed as an extra output, and each tensor's min and max are kept.
// Min/max (not a percentile) because the MobileNets clip at ReLU6 anyway, and the few unclipped
// tensors (the linear bottlenecks, the residual sums) lose accuracy when their tails are cut.
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, type OnnxModel } from './proto.ts';
import type { ActivationRange } from './quantize.ts';
import { openSession, packFrames, type RgbFrame } from './verify.ts';
import { INPUT_NAME } from './export.ts';

export interface CalibrateOptions {
  /** BN-folded fp32 graph (quantize.ts foldBatchNorms). */
  folded: OnnxModel;
  targets: readonly string[];
  frames: readonly RgbFrame[];
  inputSize: number;
  /** ONNX Runtime threads for the calibration runs. Default 1. */
  threads?: number;
  /** Frames per run. Default 8. */
  batch?: number;
  /**
   * 'minmax': the extremes over all frames; 'mean-minmax': the mean over frames of each frame's
   * extremes (a rare outlier frame then widens no range). Default 'minmax'.
   */
  method?: 'minmax' | 'mean-minmax' | 'percentile';
  /** For 'percentile': the share of values cut at each end. Default 1e-4. */
  tail?: number;
}

/** Values kept per frame and tensor for the percentile method (an even spread over the tensor). */
const SAMPLES_PER_FRAME = 4096;

export interface Calibration {
  ranges: Map<string, ActivationRange>;
  /** Per-channel means of every 4-D (NCHW) target, for bias correction. */
  means: Map<string, Float32Array>;
}

export async function calibrate(opts: CalibrateOptions): Promise<Calibration> {
  const probe: OnnxModel = {
    ...opts.folded,
    outputs: [
      ...opts.folded.outputs,
      ...opts.targets.filter((t) => !opts.folded.outputs.some((o) => o.name === t)).map((name) => ({ name, elemType: DataType.FLOAT, shape: null })),
    ],
  };
  const session = await openSession(encodeModel(probe), opts.threads ?? 1, 'the calibration graph');
  const ranges = new Map<string, ActivationRange>(opts.targets.map((t) => [t, { min: Infinity, max: -Infinity }]));
  const sums = new Map<string, ActivationRange>(opts.targets.map((t) => [t, { min: 0, max: 0 }]));
  const samples = new Map<string, number[]>(opts.targets.map((t) => [t, []]));
  const channelSums = new Map<string, Float64Array>();
  const batch = opts.batch ?? 8;
  try {
    for (let i = 0; i < opts.frames.length; i += batch) {
      const frames = opts.frames.slice(i, i + batch);
      const input = new ort.Tensor('float32', packFrames(frames, opts.inputSize), [frames.length, opts.inputSize, opts.inputSize, 3]);
      const out = await session.run({ [INPUT_NAME]: input }, [...opts.targets]);
      input.dispose();
      for (const t of opts.targets) {
        const data = out[t]!.data as Float32Array;
        const r = ranges.get(t)!;
        const sum = sums.get(t)!;
        const per = data.length / frames.length;
        const dims = out[t]!.dims;
        if (dims.length === 4) {
          const [, c, h, w] = dims as [number, number, number, number];
          const acc = channelSums.get(t) ?? new Float64Array(c);
          channelSums.set(t, acc);
          for (let f = 0; f < frames.length; f++)
            for (let ch = 0; ch < c; ch++) {
              let sum = 0;
              for (let k = (f * c + ch) * h * w, end = k + h * w; k < end; k++) sum += data[k]!;
              acc[ch] += sum / (h * w);
            }
        }
        for (let f = 0; f < frames.length; f++) {
          let lo = Infinity;
          let hi = -Infinity;
          for (let k = f * per, end = k + per; k < end; k++) {
            const v = data[k]!;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
          r.min = Math.min(r.min, lo);
          r.max = Math.max(r.max, hi);
          sum.min += lo;
          sum.max += hi;
          if (opts.method === 'percentile') {
            const keep = samples.get(t)!;
            const step = Math.max(1, Math.floor(per / SAMPLES_PER_FRAME));
            for (let k = f * per, end = k + per; k < end; k += step) keep.push(data[k]!);
          }
        }
        out[t]!.dispose();
      }
    }
  } finally {
    await session.release();
  }
  const n = opts.frames.length;
  const means = new Map([...channelSums].map(([t, acc]) => [t, Float32Array.from(acc, (v) => v / n)]));
  if (opts.method === 'mean-minmax') {
    return { ranges: new Map([...sums].map(([t, s]) => [t, { min: s.min / n, max: s.max / n }])), means };
  }
  if (opts.method === 'percentile') {
    const tail = opts.tail ?? 1e-4;
    const cut = new Map(
      [...samples].map(([t, values]) => {
        const sorted = Float32Array.from(values).sort();
        const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
        return [t, { min: at(tail), max: at(1 - tail) }];
      }),
    );
    return { ranges: cut, means };
  }
  return { ranges, means };
}
