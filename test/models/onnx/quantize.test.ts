// The QDQ rewrite on a graph small enough to check by hand: one 1x1 Conv whose second channel's
// weights are almost zero (what BatchNormalization folding leaves of a dead channel, as in
// MobileNetV2) while its bias is not. Its output is then the bias alone, and the int8 graph must
// keep it: a weight scale fitted to the weights alone makes the int32 bias wrap around.
import * as ort from 'onnxruntime-node';
import { describe, expect, test } from 'vitest';
import { EMBEDDING_NAME, OPSET } from '../../../models/onnx/export.ts';
import { DataType, encodeModel, type OnnxModel } from '../../../models/onnx/proto.ts';
import { biasScaleFloor, quantizationTargets, quantizeQdq, quantizeWeights } from '../../../models/onnx/quantize.ts';
import { openSession } from '../../../models/onnx/verify.ts';

const floats = (name: string, dims: number[], values: number[]) => ({
  name,
  dims,
  dataType: DataType.FLOAT,
  rawData: new Uint8Array(Float32Array.from(values).buffer),
});

const SIDE = 4;
const DEAD_BIAS = 2;

function tinyConv(): OnnxModel {
  return {
    irVersion: 7,
    opsetVersion: OPSET,
    producerName: 'test',
    producerVersion: '0',
    graphName: 'tiny',
    nodes: [{ opType: 'Conv', name: 'conv', input: ['x', 'W', 'B'], output: [EMBEDDING_NAME] }],
    // Channel 0 a real filter, channel 1 weights of 1e-9: its output is its bias.
    initializers: [floats('W', [2, 2, 1, 1], [0.5, -0.25, 1e-9, -1e-9]), floats('B', [2], [0.1, DEAD_BIAS])],
    inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [1, 2, SIDE, SIDE] }],
    outputs: [{ name: EMBEDDING_NAME, elemType: DataType.FLOAT, shape: [1, 2, SIDE, SIDE] }],
    metadata: {},
  };
}

async function run(model: OnnxModel, x: Float32Array): Promise<Float32Array> {
  const session = await openSession(encodeModel(model), 1, 'the tiny graph');
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [1, 2, SIDE, SIDE]) });
    return out[EMBEDDING_NAME]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('quantizeQdq', () => {
  test('a channel with near-zero weights and a large bias keeps its bias (no int32 overflow)', async () => {
    const model = tinyConv();
    expect(quantizationTargets(model).sort()).toEqual([EMBEDDING_NAME, 'x']);
    const ranges = new Map([
      ['x', { min: -1, max: 1 }],
      [EMBEDDING_NAME, { min: -1, max: 3 }],
    ]);
    const x = Float32Array.from({ length: 2 * SIDE * SIDE }, (_, i) => Math.sin(i * 1.7));
    const fp32 = await run(model, x);
    const int8 = await run(quantizeQdq(model, { ranges }), x);
    const outStep = 4 / 255;
    const inStep = 2 / 255;
    for (let i = 0; i < fp32.length; i++) expect(Math.abs(int8[i]! - fp32[i]!)).toBeLessThanOrEqual(outStep + inStep);
    // The dead channel is its bias, not a wrapped-around constant.
    for (let i = SIDE * SIDE; i < 2 * SIDE * SIDE; i++) expect(int8[i]).toBeCloseTo(DEAD_BIAS, 1);
  });

  test('the scale floor keeps round(bias / (input scale x weight scale)) inside int32, and spares normal channels', () => {
    const w = Float32Array.from([0.5, -0.25, 1e-9, -1e-9]);
    const bias = Float32Array.from([0.1, DEAD_BIAS]);
    const inputScale = 2 / 255;
    const free = quantizeWeights(w, 2, false);
    const floored = quantizeWeights(w, 2, false, biasScaleFloor(bias, inputScale));
    // Without the floor the dead channel's bias does not fit in int32.
    expect(Math.abs(DEAD_BIAS / (inputScale * free.scales[1]!))).toBeGreaterThan(2 ** 31);
    expect(Math.abs(DEAD_BIAS / (inputScale * floored.scales[1]!))).toBeLessThan(2 ** 31);
    expect(floored.scales[0]).toBe(free.scales[0]);
    expect(Array.from(floored.q.subarray(2))).toEqual([0, 0]);
  });
});
