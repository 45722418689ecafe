// fp32 ONNX graph -> statically quantized QDQ graph (the format ONNX Runtime's CPU provider fuses
// into QLinearConv / QLinearAdd int8 kernels). Pure graph rewriting on plain data; the activation
// ranges come from calibration (models/onnx/calibrate.ts).
//
// What is quantized: every Conv that the embedding depends on, its input and output activations and
// the residual Adds between them. The scaling of the input pixels, the global average pooling and
// the ImageNet classifier after the embedding stay float (they are a few % of the multiply-adds and
// the pooled embedding is what the head reads, so it keeps full resolution).
//
// Choices, after ONNX Runtime's quantization guide (QDQ format, x86):
// - activations uint8, asymmetric (zero point from the calibrated min/max), per tensor;
// - weights int8, symmetric (zero point 0: the fast "ConvSym" kernels need it), per output channel,
//   scale max|w| / 127; `reduceRange` uses 7 bits (max|w| / 63) for x86 CPUs without VNNI, whose
//   u8 x s8 multiply (VPMADDUBSW) saturates int16 pairs at full 8-bit range;
// - bias int32 with scale input_scale * weight_scale[c], zero point 0 (what QLinearConv expects);
// - BatchNormalization folded into the preceding Conv first (its per-channel scale must be inside the
//   weights before they are quantized), and a ReLU6 Clip right after a Conv dropped: its output's
//   quantization range is [0, <=6] with zero point 0, so saturating to uint8 is the clip.
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { EMBEDDING_NAME } from './export.ts';
import { AttrType, DataType, type OnnxModel, type OnnxNode, type OnnxTensor } from './proto.ts';

/**
 * Bumped when the rewrite's output changes for the same inputs, so cached int8 files are made again.
 * 2: weight scales floored so every int32 bias fits (biasScaleFloor).
 */
export const QUANTIZER_VERSION = 2;

export interface ActivationRange {
  min: number;
  max: number;
}

export interface QuantizeOptions {
  /** Calibrated range of every tensor in quantizationTargets(folded graph). */
  ranges: ReadonlyMap<string, ActivationRange>;
  /** 7-bit weights for x86 without VNNI. Default false. */
  reduceRange?: boolean;
  /** Per-channel means of each quantized Conv's input (calibration), for bias correction. */
  inputMeans?: ReadonlyMap<string, Float32Array>;
}

/** Per-tensor uint8 activation parameters. */
export interface ActivationQuant {
  scale: number;
  zeroPoint: number;
}

const floatsOf = (t: OnnxTensor): Float32Array => new Float32Array(t.rawData.slice().buffer);
const floatTensor = (name: string, dims: number[], data: Float32Array): OnnxTensor => ({
  name,
  dims,
  dataType: DataType.FLOAT,
  rawData: new Uint8Array(data.slice().buffer),
});

function clone(model: OnnxModel): OnnxModel {
  return {
    ...model,
    nodes: model.nodes.map((n) => ({ ...n, input: [...n.input], output: [...n.output] })),
    initializers: [...model.initializers],
    metadata: { ...model.metadata },
  };
}

function attr(node: OnnxNode, name: string): number | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.f ?? a?.i;
}

function consumersOf(model: OnnxModel): Map<string, OnnxNode[]> {
  const m = new Map<string, OnnxNode[]>();
  for (const n of model.nodes) for (const i of n.input) m.set(i, [...(m.get(i) ?? []), n]);
  return m;
}

/**
 * Folds every BatchNormalization whose input is a Conv's output used by nothing else into that Conv:
 * W'[c] = W[c] * g[c], B'[c] = (B[c] - mean[c]) * g[c] + beta[c], g = gamma / sqrt(var + eps).
 * The same math ONNX Runtime does at load time for fp32; here it must happen before quantizing.
 */
export function foldBatchNorms(input: OnnxModel): OnnxModel {
  const model = clone(input);
  const inits = new Map(model.initializers.map((t) => [t.name, t]));
  const consumers = consumersOf(model);
  const producer = new Map(model.nodes.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const removed = new Set<OnnxNode>();
  for (const bn of model.nodes) {
    if (bn.opType !== 'BatchNormalization') continue;
    const conv = producer.get(bn.input[0]!);
    if (!conv || conv.opType !== 'Conv' || consumers.get(bn.input[0]!)?.length !== 1) continue;
    const w = inits.get(conv.input[1]!)!;
    const co = w.dims[0]!;
    const per = w.dims.slice(1).reduce((a, b) => a * b, 1);
    const [gamma, beta, mean, variance] = bn.input.slice(1).map((n) => floatsOf(inits.get(n)!));
    const eps = attr(bn, 'epsilon') ?? 1e-5;
    const wData = floatsOf(w);
    const bData = conv.input[2] ? floatsOf(inits.get(conv.input[2])!) : new Float32Array(co);
    const newB = new Float32Array(co);
    for (let c = 0; c < co; c++) {
      const g = gamma![c]! / Math.sqrt(variance![c]! + eps);
      for (let k = 0; k < per; k++) wData[c * per + k] = wData[c * per + k]! * g;
      newB[c] = (bData[c]! - mean![c]!) * g + beta![c]!;
    }
    const wName = `${conv.name}/W_folded`;
    const bName = `${conv.name}/B_folded`;
    inits.set(wName, floatTensor(wName, w.dims, wData));
    inits.set(bName, floatTensor(bName, [co], newB));
    conv.input = [conv.input[0]!, wName, bName];
    conv.output = [bn.output[0]!];
    removed.add(bn);
  }
  model.nodes = model.nodes.filter((n) => !removed.has(n));
  const used = new Set(model.nodes.flatMap((n) => n.input));
  model.initializers = [...inits.values()].filter((t) => used.has(t.name));
  return model;
}

/** Names of tensors the embedding depends on (walking back from the embedding output). */
function embeddingAncestors(model: OnnxModel): Set<OnnxNode> {
  const producer = new Map(model.nodes.flatMap((n) => n.output.map((o) => [o, n] as const)));
  const seen = new Set<OnnxNode>();
  const stack = [EMBEDDING_NAME];
  while (stack.length) {
    const n = producer.get(stack.pop()!);
    if (!n || seen.has(n)) continue;
    seen.add(n);
    stack.push(...n.input);
  }
  return seen;
}

/** The ReLU6 Clip that is the only consumer of a Conv's output, if there is one. */
function relu6After(conv: OnnxNode, consumers: Map<string, OnnxNode[]>, inits: Map<string, OnnxTensor>): OnnxNode | undefined {
  const c = consumers.get(conv.output[0]!);
  if (c?.length !== 1 || c[0]!.opType !== 'Clip') return undefined;
  const [lo, hi] = c[0]!.input.slice(1).map((n) => (inits.get(n) ? floatsOf(inits.get(n)!)[0] : undefined));
  return lo === 0 && hi === 6 ? c[0] : undefined;
}

/**
 * The tensors whose ranges calibration must measure, in the BN-folded fp32 graph: the input of every
 * quantized Conv, its output (after its ReLU6 when it has one) and every residual Add's output.
 */
export function quantizationTargets(folded: OnnxModel): string[] {
  const ancestors = embeddingAncestors(folded);
  const consumers = consumersOf(folded);
  const inits = new Map(folded.initializers.map((t) => [t.name, t]));
  const targets = new Set<string>();
  for (const n of folded.nodes) {
    if (!ancestors.has(n)) continue;
    if (n.opType === 'Conv') {
      targets.add(n.input[0]!);
      targets.add((relu6After(n, consumers, inits) ?? n).output[0]!);
    } else if (n.opType === 'Add') targets.add(n.output[0]!);
  }
  return [...targets];
}

/** uint8 asymmetric parameters covering [min, max] (always including 0, so zero padding is exact). */
export function activationQuant(range: ActivationRange): ActivationQuant {
  const lo = Math.min(0, range.min);
  const hi = Math.max(0, range.max);
  if (!(Number.isFinite(lo) && Number.isFinite(hi)))
    throw new FramewiseError(ErrorCodes.MODEL_INVALID, `calibrated range [${range.min}, ${range.max}] is not finite`);
  const scale = hi - lo > 0 ? (hi - lo) / 255 : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint };
}

/**
 * int8 symmetric per-channel weights: the quantized values and one scale per output channel. The
 * scale is the one of max|w| * r, r in 0.5..1, with the least squared error: a few outlying weights
 * (common after BatchNormalization is folded in) otherwise stretch the grid for all the others.
 * `minScales` (per channel) is a floor on the scale: see biasScaleFloor.
 */
export function quantizeWeights(w: Float32Array, channels: number, reduceRange: boolean, minScales?: Float32Array): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const qmax = reduceRange ? 63 : 127;
  const q = new Int8Array(w.length);
  const scales = new Float32Array(channels);
  const err = (c: number, s: number) => {
    let e = 0;
    for (let k = c * per, end = k + per; k < end; k++) {
      const v = w[k]!;
      const d = v - Math.max(-qmax, Math.min(qmax, Math.round(v / s))) * s;
      e += d * d;
    }
    return e;
  };
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let k = 0; k < per; k++) m = Math.max(m, Math.abs(w[c * per + k]!));
    // An all-zero channel still needs a positive scale (QLinearConv's requantisation multiplies by it).
    const floor = minScales?.[c] ?? 0;
    let best = Math.max(m > 0 ? m / qmax : 1, floor);
    if (m / qmax > floor) {
      let bestErr = err(c, best);
      for (let r = 0.98; r >= 0.5 && (m * r) / qmax >= floor; r -= 0.02) {
        const e = err(c, (m * r) / qmax);
        if (e < bestErr) ((bestErr = e), (best = (m * r) / qmax));
      }
    }
    scales[c] = best;
    for (let k = 0; k < per; k++) q[c * per + k] = Math.max(-qmax, Math.min(qmax, Math.round(w[c * per + k]! / best)));
  }
  return { q, scales };
}

/** Largest int32 bias value used: a margin below 2^31 - 1. */
const BIAS_INT32_LIMIT = 2 ** 31 - 2 ** 20;

/**
 * The smallest weight scale per channel at which the bias still fits in int32. The bias is stored
 * as round(b / (x_scale * w_scale)); a channel whose weights BatchNormalization folded to almost
 * nothing (MobileNetV2 has such dead channels) gets a tiny w_scale, and its bias, large beside it,
 * wraps around int32 into a wrong constant (ONNX Runtime's quantizer raises such scales the same
 * way). Raising the scale costs nothing there: the channel's weights are about 0 at any scale.
 */
export function biasScaleFloor(bias: Float32Array, inputScale: number): Float32Array {
  return bias.map((b) => Math.abs(b) / (inputScale * BIAS_INT32_LIMIT));
}

/**
 * Bias correction: rounding the weights shifts each output channel's mean by
 * sum_k (wq - w)[c, k] * E[x_k]; with the input's per-channel means from calibration that shift is
 * taken out of the bias (Nagel et al. 2019, "Data-free quantization", which matters most for
 * MobileNets' depthwise layers). Border padding is ignored (a few % of positions).
 */
export function biasCorrection(w: Float32Array, dims: number[], q: Int8Array, scales: Float32Array, group: number, inputMeans: Float32Array): Float32Array {
  const [co, ciPerGroup, kh, kw] = dims as [number, number, number, number];
  const per = ciPerGroup * kh * kw;
  const outPerGroup = co / group;
  const shift = new Float32Array(co);
  for (let o = 0; o < co; o++) {
    const g = Math.floor(o / outPerGroup);
    let s = 0;
    for (let i = 0; i < ciPerGroup; i++) {
      const mean = inputMeans[g * ciPerGroup + i] ?? 0;
      for (let k = 0; k < kh * kw; k++) {
        const idx = o * per + i * kh * kw + k;
        s += (q[idx]! * scales[o]! - w[idx]!) * mean;
      }
    }
    shift[o] = s;
  }
  return shift;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/**
 * Rewrites the BN-folded fp32 graph into QDQ form with the given ranges. The result keeps the
 * fp32 graph's inputs, outputs and metadata (plus `framewise.precision` = int8).
 */
export function quantizeQdq(folded: OnnxModel, opts: QuantizeOptions): OnnxModel {
  const model = clone(folded);
  const inits = new Map(model.initializers.map((t) => [t.name, t]));
  const consumers = consumersOf(model);
  const ancestors = embeddingAncestors(model);
  const targets = new Set(quantizationTargets(model));
  for (const t of targets) if (!opts.ranges.has(t)) throw new FramewiseError(ErrorCodes.MODEL_INVALID, `no calibrated range for tensor "${t}"`);

  // Drop ReLU6 after quantized Convs: the Conv writes the Clip's output name, whose uint8 range
  // starts at 0 (zero point 0) and ends at most at 6.
  const quant = new Map<string, ActivationQuant>();
  const dropped = new Set<OnnxNode>();
  for (const n of model.nodes) {
    if (n.opType !== 'Conv' || !ancestors.has(n)) continue;
    const clip = relu6After(n, consumers, inits);
    if (clip) {
      dropped.add(clip);
      n.output = [clip.output[0]!];
      const r = opts.ranges.get(clip.output[0]!)!;
      quant.set(clip.output[0]!, activationQuant({ min: 0, max: Math.min(6, Math.max(r.max, 1e-6)) }));
    }
  }
  for (const t of targets) if (!quant.has(t)) quant.set(t, activationQuant(opts.ranges.get(t)!));

  const nodes: OnnxNode[] = [];
  const newInits: OnnxTensor[] = [];
  const scalarInit = (name: string, dataType: number, bytes: Uint8Array, dims: number[] = []) => {
    newInits.push({ name, dims, dataType, rawData: bytes });
    return name;
  };
  const rename = new Map<string, string>();
  const qdq = (tensor: string) => {
    const p = quant.get(tensor)!;
    const s = scalarInit(`${tensor}/q_scale`, DataType.FLOAT, bytesOf(new Float32Array([p.scale])));
    const z = scalarInit(`${tensor}/q_zero`, DataType.UINT8, new Uint8Array([p.zeroPoint]));
    nodes.push({ opType: 'QuantizeLinear', name: `${tensor}/quantize`, input: [tensor, s, z], output: [`${tensor}/q`] });
    nodes.push({ opType: 'DequantizeLinear', name: `${tensor}/dequantize`, input: [`${tensor}/q`, s, z], output: [`${tensor}/dq`] });
    rename.set(tensor, `${tensor}/dq`);
  };
  const done = new Set<string>();
  // A target produced by no node (a graph input) gets its pair first.
  const produced = new Set(model.nodes.flatMap((n) => n.output));
  for (const t of targets) if (!produced.has(t)) (qdq(t), done.add(t));

  for (const n of model.nodes) {
    if (dropped.has(n)) continue;
    const node = { ...n, input: n.input.map((i) => rename.get(i) ?? i) };
    if (n.opType === 'Conv' && ancestors.has(n)) {
      const x = quant.get(n.input[0]!)!;
      const w = inits.get(n.input[1]!)!;
      const co = w.dims[0]!;
      const wFloat = floatsOf(w);
      const bias = n.input[2] ? floatsOf(inits.get(n.input[2])!) : undefined;
      const { q, scales } = quantizeWeights(wFloat, co, opts.reduceRange ?? false, bias && biasScaleFloor(bias, x.scale));
      const means = opts.inputMeans?.get(n.input[0]!);
      const shift = means ? biasCorrection(wFloat, w.dims, q, scales, attr(n, 'group') ?? 1, means) : undefined;
      const wq = scalarInit(`${n.name}/W_q`, DataType.INT8, bytesOf(q), w.dims);
      const ws = scalarInit(`${n.name}/W_scale`, DataType.FLOAT, bytesOf(scales), [co]);
      const wz = scalarInit(`${n.name}/W_zero`, DataType.INT8, new Uint8Array(co), [co]);
      nodes.push({
        opType: 'DequantizeLinear',
        name: `${n.name}/W_dequantize`,
        input: [wq, ws, wz],
        output: [`${n.name}/W_dq`],
        attribute: [{ name: 'axis', type: AttrType.INT, i: 0 }],
      });
      node.input[1] = `${n.name}/W_dq`;
      if (bias) {
        const b = bias.map((v, c) => v - (shift?.[c] ?? 0));
        const bs = scales.map((s) => s * x.scale);
        const bq = Int32Array.from(b, (v, c) => Math.round(v / bs[c]!));
        const bqName = scalarInit(`${n.name}/B_q`, DataType.INT32, bytesOf(bq), [co]);
        const bsName = scalarInit(`${n.name}/B_scale`, DataType.FLOAT, bytesOf(bs), [co]);
        const bzName = scalarInit(`${n.name}/B_zero`, DataType.INT32, new Uint8Array(4 * co), [co]);
        nodes.push({
          opType: 'DequantizeLinear',
          name: `${n.name}/B_dequantize`,
          input: [bqName, bsName, bzName],
          output: [`${n.name}/B_dq`],
          attribute: [{ name: 'axis', type: AttrType.INT, i: 0 }],
        });
        node.input[2] = `${n.name}/B_dq`;
      }
    }
    nodes.push(node);
    for (const o of n.output) if (targets.has(o) && !done.has(o)) (qdq(o), done.add(o));
  }
  const used = new Set(nodes.flatMap((n) => n.input));
  model.nodes = nodes;
  model.initializers = [...model.initializers, ...newInits].filter((t) => used.has(t.name));
  model.metadata = { ...model.metadata, 'framewise.precision': 'int8', 'framewise.weight_bits': opts.reduceRange ? '7' : '8' };
  return model;
}
