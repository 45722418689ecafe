// Layers model -> ONNX graph with the same math. The graph takes the pixels the tfjs embedder takes
// (NHWC float32 RGB in 0..255) and does the Keras scaling x/127.5 - 1 itself, then works in NCHW
// (what ONNX Conv expects). Outputs: `embedding` [N, dim] (the GlobalAveragePooling2D output, the
// tfjs embedder's vector) and `logits` [N, classes] (the input of the final softmax, for classify).
//
// TF 'same' padding puts the odd pixel of padding at the bottom/right (stride 2 on an even input
// needs 1 pixel in total, all of it after), while ONNX auto_pad SAME_UPPER would do the same but is
// deprecated-ish and shape-dependent: explicit pads per layer are computed here from static shapes.
import type * as tf from '@tensorflow/tfjs';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { AttrType, DataType, encodeModel, type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor } from './proto.ts';

/** Bumped whenever the emitted graph changes, so cached exports of older exporters are redone. */
export const EXPORTER_VERSION = '1';
export const OPSET = 13;
/** onnx.proto IR_VERSION 7 is the one opset 13 was released with. */
const IR_VERSION = 7;

export const INPUT_NAME = 'pixels';
export const EMBEDDING_NAME = 'embedding';
export const LOGITS_NAME = 'logits';

export interface MacCount {
  /** Multiply-adds per frame up to and including the embedding (convolutions, dense layers). */
  embedding: number;
  /** Multiply-adds per frame of the classification head after the embedding. */
  head: number;
}

export interface OnnxExport {
  id: string;
  bytes: Uint8Array;
  inputSize: number;
  dim: number;
  /** Length of the logits output (1001 with a background class, or 1000). */
  classes: number;
  macs: MacCount;
  /** ONNX op type -> count, for `models list` and sanity checks. */
  opCounts: Record<string, number>;
  /** The graph itself (what `bytes` encodes), for rewrites such as the int8 quantizer. */
  model: OnnxModel;
}

interface Value {
  /** ONNX value name. */
  name: string;
  /** 'nchw' for 4-D maps (after the input transpose), 'flat' for [N, C]. */
  layout: 'nchw' | 'flat';
  /** Past the final softmax: not exported. */
  afterLogits?: boolean;
  /** Past the embedding: counts towards the head's MACs. */
  afterEmbedding?: boolean;
}

type LayerConfig = Record<string, unknown>;

function unsupported(id: string, layer: tf.layers.Layer, what: string): FramewiseError {
  return new FramewiseError(ErrorCodes.MODEL_INVALID, `cannot export "${id}" to ONNX: layer "${layer.name}" (${layer.getClassName()}) ${what}`);
}

function floatTensor(name: string, dims: number[], data: Float32Array): OnnxTensor {
  const copy = new Float32Array(data); // own buffer: the layer's data stays untouched
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(copy.buffer) };
}

function int64Tensor(name: string, values: number[]): OnnxTensor {
  return { name, dims: [values.length], dataType: DataType.INT64, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) };
}

const ints = (name: string, values: number[]): OnnxAttribute => ({ name, type: AttrType.INTS, ints: values });
const int = (name: string, i: number): OnnxAttribute => ({ name, type: AttrType.INT, i });
const float = (name: string, f: number): OnnxAttribute => ({ name, type: AttrType.FLOAT, f });

/** [kh, kw, ci, co] (TF HWIO) -> [co, ci, kh, kw] (ONNX OIHW). */
export function hwioToOihw(w: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < kh; h++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) out[((o * ci + i) * kh + h) * kw + x] = w[((h * kw + x) * ci + i) * co + o]!;
  return out;
}

/** Depthwise [kh, kw, C, M] -> [C*M, 1, kh, kw]; output channel c*M + m, as in TF and ONNX group conv. */
export function depthwiseToOihw(w: Float32Array, [kh, kw, c, m]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let h = 0; h < kh; h++)
    for (let x = 0; x < kw; x++)
      for (let ch = 0; ch < c; ch++) for (let j = 0; j < m; j++) out[((ch * m + j) * kh + h) * kw + x] = w[((h * kw + x) * c + ch) * m + j]!;
  return out;
}

/**
 * TF padding for one spatial axis as [before, after]: 'same' gives out = ceil(in / stride) and puts
 * the extra pixel after (bottom/right); 'valid' pads nothing.
 */
export function tfPads(padding: string, size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  if (padding === 'valid') return [0, 0];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** Weights of a layer by their short name ('kernel', 'bias', 'gamma', ...). */
function weightsOf(layer: tf.layers.Layer): Map<string, { shape: number[]; data: Float32Array }> {
  const map = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const v of layer.weights) {
    const full = (v as unknown as { originalName?: string }).originalName ?? v.name;
    const short = full.slice(full.lastIndexOf('/') + 1).replace(/_\d+$/, '');
    // read() is the variable itself (no new tensor); dataSync copies nothing we own.
    map.set(short, { shape: v.shape as number[], data: v.read().dataSync() as Float32Array });
  }
  return map;
}

function inboundNames(layer: tf.layers.Layer): string[] {
  const nodes = (layer as unknown as { inboundNodes: { inboundLayers: tf.layers.Layer[] }[] }).inboundNodes;
  return (nodes[0]?.inboundLayers ?? []).map((l) => l.name);
}

function spatial(layer: tf.layers.Layer): [number, number] {
  const shape = (layer.input as tf.SymbolicTensor).shape;
  const h = shape[1];
  const w = shape[2];
  if (typeof h !== 'number' || typeof w !== 'number') throw new Error(`layer ${layer.name} has no static input size`);
  return [h, w];
}

/** Converts a loaded layers model (weights already dequantised by tfjs) into ONNX. */
export function exportLayersModel(id: string, model: tf.LayersModel, metadata: Record<string, string> = {}): OnnxExport {
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const values = new Map<string, Value>();
  const macs: MacCount = { embedding: 0, head: 0 };
  let inputSize = 0;
  let dim = 0;
  let classes = 0;
  let logitsDone = false;

  const node = (opType: string, name: string, input: string[], output: string[], attribute?: OnnxAttribute[]) =>
    nodes.push({ opType, name, input, output, ...(attribute ? { attribute } : {}) });
  const scalar = (name: string, v: number) => {
    if (!inits.some((t) => t.name === name)) inits.push(floatTensor(name, [], new Float32Array([v])));
    return name;
  };

  const activation = (layer: tf.layers.Layer, act: string, input: Value, out: string): Value | 'softmax' => {
    switch (act) {
      case 'linear':
        return input;
      case 'relu6':
        node('Clip', `${out}/relu6`, [input.name, scalar('const/zero', 0), scalar('const/six', 6)], [out]);
        return { ...input, name: out };
      case 'relu':
        node('Relu', `${out}/relu`, [input.name], [out]);
        return { ...input, name: out };
      case 'softmax':
        return 'softmax';
      default:
        throw unsupported(id, layer, `has activation "${act}", which the exporter does not know`);
    }
  };

  const emitLogits = (input: Value) => {
    node('Flatten', 'logits/flatten', [input.name], [LOGITS_NAME], [int('axis', 1)]);
    logitsDone = true;
  };

  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as LayerConfig;
    const ins = inboundNames(layer).map((n) => values.get(n)!);
    const x = ins[0];
    if (cls !== 'InputLayer' && (!x || ins.some((v) => v === undefined))) throw unsupported(id, layer, 'has an input the exporter did not produce');
    if (x?.afterLogits) {
      values.set(layer.name, { ...x, afterLogits: true });
      continue;
    }
    const out = layer.name;
    const count = (n: number) => {
      if (x?.afterEmbedding) macs.head += n;
      else macs.embedding += n;
    };

    switch (cls) {
      case 'InputLayer': {
        const shape = cfg.batchInputShape as (number | null)[];
        if (shape.length !== 4 || shape[1] !== shape[2] || shape[3] !== 3) throw unsupported(id, layer, `has input shape [${shape}], expected [N,S,S,3]`);
        inputSize = shape[1]!;
        // Keras MobileNet preprocess_input: x / 127.5 - 1, the scaling the tfjs embedder applies too.
        node('Div', 'preprocess/div', [INPUT_NAME, scalar('const/127.5', 127.5)], ['preprocess/scaled']);
        node('Sub', 'preprocess/sub', ['preprocess/scaled', scalar('const/one', 1)], ['preprocess/centered']);
        node('Transpose', 'preprocess/nchw', ['preprocess/centered'], [out], [ints('perm', [0, 3, 1, 2])]);
        values.set(out, { name: out, layout: 'nchw' });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        if (x!.layout !== 'nchw') throw unsupported(id, layer, 'takes a flat input');
        if ((cfg.dataFormat ?? 'channelsLast') !== 'channelsLast') throw unsupported(id, layer, 'is not channels_last');
        const [kh, kw] = cfg.kernelSize as number[];
        const [sh, sw] = cfg.strides as number[];
        const dil = (cfg.dilationRate as number[] | undefined) ?? [1, 1];
        const [h, w] = spatial(layer);
        const padH = tfPads(cfg.padding as string, h, kh!, sh!, dil[0]);
        const padW = tfPads(cfg.padding as string, w, kw!, sw!, dil[1]);
        const weights = weightsOf(layer);
        const depthwise = cls === 'DepthwiseConv2D';
        const k = weights.get(depthwise ? 'depthwise_kernel' : 'kernel');
        if (!k) throw unsupported(id, layer, 'has no kernel weight');
        const [, , ci, co] = k.shape as [number, number, number, number];
        const outChannels = depthwise ? ci * co : co;
        const wName = `${out}/W`;
        inits.push(
          floatTensor(
            wName,
            depthwise ? [outChannels, 1, kh!, kw!] : [co, ci, kh!, kw!],
            depthwise ? depthwiseToOihw(k.data, k.shape) : hwioToOihw(k.data, k.shape),
          ),
        );
        const inputs = [x!.name, wName];
        const bias = weights.get('bias');
        if (cfg.useBias !== false && bias) {
          inits.push(floatTensor(`${out}/B`, [outChannels], bias.data));
          inputs.push(`${out}/B`);
        }
        const act = (cfg.activation as string | undefined) ?? 'linear';
        const convOut = act === 'linear' ? out : `${out}/conv`;
        node(
          'Conv',
          `${out}/conv`,
          inputs,
          [convOut],
          [
            ints('dilations', dil),
            int('group', depthwise ? ci : 1),
            ints('kernel_shape', [kh!, kw!]),
            ints('pads', [padH[0], padW[0], padH[1], padW[1]]),
            ints('strides', [sh!, sw!]),
          ],
        );
        const outShape = layer.outputShape as number[];
        count(outShape[1]! * outShape[2]! * outChannels * kh! * kw! * (depthwise ? 1 : ci));
        const a = activation(layer, act, { ...x!, name: convOut }, out);
        if (a === 'softmax') emitLogits({ ...x!, name: convOut });
        values.set(out, a === 'softmax' ? { ...x!, afterLogits: true } : a);
        break;
      }
      case 'BatchNormalization': {
        if (x!.layout !== 'nchw') throw unsupported(id, layer, 'takes a flat input');
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== 3) throw unsupported(id, layer, `normalises axis ${axis}, not channels`);
        const wt = weightsOf(layer);
        const mean = wt.get('moving_mean');
        const variance = wt.get('moving_variance');
        if (!mean || !variance) throw unsupported(id, layer, 'lacks moving statistics');
        const c = mean.data.length;
        const gamma = wt.get('gamma')?.data ?? new Float32Array(c).fill(1);
        const beta = wt.get('beta')?.data ?? new Float32Array(c);
        for (const [n, d] of [
          ['scale', gamma],
          ['B', beta],
          ['mean', mean.data],
          ['var', variance.data],
        ] as const) {
          inits.push(floatTensor(`${out}/${n}`, [c], d));
        }
        node(
          'BatchNormalization',
          `${out}/bn`,
          [x!.name, `${out}/scale`, `${out}/B`, `${out}/mean`, `${out}/var`],
          [out],
          [float('epsilon', cfg.epsilon as number)],
        );
        values.set(out, { ...x!, name: out });
        break;
      }
      case 'Activation': {
        const a = activation(layer, cfg.activation as string, x!, out);
        if (a === 'softmax') {
          emitLogits(x!);
          values.set(out, { ...x!, afterLogits: true });
        } else values.set(out, a);
        break;
      }
      case 'ReLU': {
        const max = cfg.maxValue as number | null | undefined;
        if (max !== 6 && max != null) throw unsupported(id, layer, `has max_value ${max}`);
        values.set(out, activation(layer, max === 6 ? 'relu6' : 'relu', x!, out) as Value);
        break;
      }
      case 'Softmax':
        emitLogits(x!);
        values.set(out, { ...x!, afterLogits: true });
        break;
      case 'Add': {
        let acc = ins[0]!.name;
        for (let i = 1; i < ins.length; i++) {
          const o = i === ins.length - 1 ? out : `${out}/add${i}`;
          node('Add', `${out}/add${i}`, [acc, ins[i]!.name], [o]);
          acc = o;
        }
        values.set(out, { ...x!, name: out });
        break;
      }
      case 'GlobalAveragePooling2D': {
        if (x!.layout !== 'nchw' || cfg.keepDims === true) throw unsupported(id, layer, 'is not a channels_last pooling to [N, C]');
        node('GlobalAveragePool', `${out}/pool`, [x!.name], [`${out}/nc11`]);
        node('Flatten', `${out}/flatten`, [`${out}/nc11`], [EMBEDDING_NAME], [int('axis', 1)]);
        dim = (layer.outputShape as number[])[1]!;
        values.set(out, { name: EMBEDDING_NAME, layout: 'flat', afterEmbedding: true });
        break;
      }
      case 'Dropout':
        values.set(out, x!); // inference: identity
        break;
      case 'Reshape': {
        const target = cfg.targetShape as number[];
        if (x!.layout === 'flat' && target.length === 3 && target[0] === 1 && target[1] === 1) {
          // [N, C] -> NHWC [N,1,1,C], held here as NCHW [N,C,1,1]; 0 keeps the batch dim.
          const shapeName = `${out}/shape`;
          inits.push(int64Tensor(shapeName, [0, target[2]!, 1, 1]));
          node('Reshape', `${out}/reshape`, [x!.name, shapeName], [out]);
          values.set(out, { ...x!, name: out, layout: 'nchw' });
        } else if (x!.layout === 'nchw' && target.length === 1) {
          node('Flatten', `${out}/flatten`, [x!.name], [out], [int('axis', 1)]);
          values.set(out, { ...x!, name: out, layout: 'flat' });
        } else throw unsupported(id, layer, `reshapes to [${target}], which the exporter does not know`);
        break;
      }
      case 'Dense': {
        if (x!.layout !== 'flat') throw unsupported(id, layer, 'takes a 4-D input');
        const wt = weightsOf(layer);
        const k = wt.get('kernel')!;
        const [inDim, units] = k.shape as [number, number];
        inits.push(floatTensor(`${out}/W`, [inDim, units], k.data));
        const inputs = [x!.name, `${out}/W`];
        const bias = wt.get('bias');
        if (cfg.useBias !== false && bias) {
          inits.push(floatTensor(`${out}/B`, [units], bias.data));
          inputs.push(`${out}/B`);
        }
        const act = (cfg.activation as string | undefined) ?? 'linear';
        const gemmOut = act === 'linear' ? out : `${out}/gemm`;
        node('Gemm', `${out}/gemm`, inputs, [gemmOut]);
        count(inDim * units);
        const a = activation(layer, act, { ...x!, name: gemmOut }, out);
        if (a === 'softmax') emitLogits({ ...x!, name: gemmOut });
        values.set(out, a === 'softmax' ? { ...x!, afterLogits: true } : a);
        break;
      }
      default:
        throw unsupported(id, layer, 'is of a class the exporter does not know');
    }
  }

  if (!dim) throw new FramewiseError(ErrorCodes.MODEL_INVALID, `cannot export "${id}" to ONNX: no GlobalAveragePooling2D layer (the embedding)`);
  if (!logitsDone) throw new FramewiseError(ErrorCodes.MODEL_INVALID, `cannot export "${id}" to ONNX: no final softmax (the logits)`);
  classes = (model.outputs[0]!.shape as number[]).slice(-1)[0]!;

  const onnx: OnnxModel = {
    irVersion: IR_VERSION,
    opsetVersion: OPSET,
    producerName: 'framewise',
    producerVersion: EXPORTER_VERSION,
    docString: `${id}: NHWC float32 RGB 0..255 in; embedding [N,${dim}] and logits [N,${classes}] out`,
    graphName: id,
    nodes,
    initializers: inits,
    inputs: [{ name: INPUT_NAME, elemType: DataType.FLOAT, shape: ['N', inputSize, inputSize, 3], docString: 'RGB 0..255, NHWC' }],
    outputs: [
      { name: EMBEDDING_NAME, elemType: DataType.FLOAT, shape: ['N', dim] },
      { name: LOGITS_NAME, elemType: DataType.FLOAT, shape: ['N', classes] },
    ],
    metadata: {
      'framewise.embedder_id': id,
      'framewise.embedding_dim': String(dim),
      'framewise.classes': String(classes),
      'framewise.input_size': String(inputSize),
      'framewise.macs_embedding': String(macs.embedding),
      'framewise.macs_head': String(macs.head),
      ...metadata,
    },
  };
  const opCounts: Record<string, number> = {};
  for (const n of nodes) opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
  return { id, bytes: encodeModel(onnx), inputSize, dim, classes, macs, opCounts, model: onnx };
}
