import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureBackend } from '../../../models/backend.ts';
import { depthwiseToOihw, exportLayersModel, hwioToOihw, tfPads } from '../../../models/onnx/export.ts';
import { loadLayersModel, readLayersArtifacts } from '../../../models/onnx/layers-source.ts';
import { AttrType, DataType, decodeModelSummary, encodeModel, type OnnxModel } from '../../../models/onnx/proto.ts';
import { ErrorCodes } from '../../../core/errors.ts';
import { MODELS_DIR } from '../../helpers/real-models.ts';

describe('TF padding as explicit ONNX pads', () => {
  test("'same' at stride 2 on an even size puts the single extra pixel after (bottom/right)", () => {
    expect(tfPads('same', 224, 3, 2)).toEqual([0, 1]);
    expect(tfPads('same', 14, 3, 2)).toEqual([0, 1]);
  });
  test("'same' at stride 2 on an odd size, stride 1 and 1x1 kernels", () => {
    expect(tfPads('same', 7, 3, 2)).toEqual([1, 1]);
    expect(tfPads('same', 112, 3, 1)).toEqual([1, 1]);
    expect(tfPads('same', 7, 1, 1)).toEqual([0, 0]);
    expect(tfPads('same', 224, 5, 2)).toEqual([1, 2]);
  });
  test("'valid' pads nothing", () => {
    expect(tfPads('valid', 224, 3, 2)).toEqual([0, 0]);
  });
});

describe('kernel layouts', () => {
  test('HWIO -> OIHW moves each element to its (o, i, h, w) place', () => {
    const [kh, kw, ci, co] = [2, 3, 4, 5];
    const w = Float32Array.from({ length: kh * kw * ci * co }, (_, n) => n);
    const out = hwioToOihw(w, [kh, kw, ci, co]);
    for (const [h, x, i, o] of [
      [0, 0, 0, 0],
      [1, 2, 3, 4],
      [1, 0, 2, 3],
      [0, 2, 1, 0],
    ] as const) {
      expect(out[((o * ci + i) * kh + h) * kw + x]).toBe(w[((h * kw + x) * ci + i) * co + o]);
    }
  });
  test('depthwise [h, w, C, M] -> [C*M, 1, h, w] keeps TF channel order c*M + m', () => {
    const [kh, kw, c, m] = [3, 3, 4, 2];
    const w = Float32Array.from({ length: kh * kw * c * m }, (_, n) => n);
    const out = depthwiseToOihw(w, [kh, kw, c, m]);
    expect(out[((3 * m + 1) * kh + 2) * kw + 1]).toBe(w[((2 * kw + 1) * c + 3) * m + 1]);
    expect(out[0]).toBe(w[0]);
  });
});

describe('protobuf encoding', () => {
  test('a hand-made model round-trips through the onnx.proto subset', () => {
    const m: OnnxModel = {
      irVersion: 7,
      opsetVersion: 13,
      producerName: 'test',
      producerVersion: '0',
      graphName: 'g',
      nodes: [{ name: 'r', opType: 'Relu', input: ['x'], output: ['y'], attribute: [{ name: 'a', type: AttrType.INTS, ints: [1, 2] }] }],
      initializers: [{ name: 'c', dims: [1], dataType: DataType.FLOAT, rawData: new Uint8Array(4) }],
      inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: ['N', 3] }],
      outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: ['N', 3] }],
      metadata: { k: 'v' },
    };
    const s = decodeModelSummary(encodeModel(m));
    expect(s).toEqual({
      irVersion: 7,
      opsetVersion: 13,
      producerName: 'test',
      opTypes: { Relu: 1 },
      inputs: ['x'],
      outputs: ['y'],
      initializerCount: 1,
      metadata: { k: 'v' },
    });
  });
});

describe('exporting a layers model', () => {
  beforeAll(() => ensureBackend());

  test('is deterministic: two loads of mobilenet_v1_0.25_224 give the same bytes', async () => {
    const bytes: Uint8Array[] = [];
    for (let i = 0; i < 2; i++) {
      const model = await loadLayersModel(await readLayersArtifacts('mobilenet_v1_0.25_224', MODELS_DIR));
      try {
        bytes.push(exportLayersModel('mobilenet_v1_0.25_224', model).bytes);
      } finally {
        model.dispose();
      }
    }
    expect(bytes[0]!.length).toBeGreaterThan(1_000_000);
    expect(Buffer.compare(Buffer.from(bytes[0]!), Buffer.from(bytes[1]!))).toBe(0);
  });

  test('writes the expected graph, sizes and multiply-adds for each model', async () => {
    const expected = {
      'mobilenet_v2_1.0_224': { dim: 1280, classes: 1001, convs: 52, macsM: [299, 301] },
      'mobilenet_v1_1.0_224': { dim: 1024, classes: 1001, convs: 27, macsM: [567, 570] },
      'mobilenet_v1_0.25_224': { dim: 256, classes: 1000, convs: 28, macsM: [40, 42] },
    } as const;
    for (const [id, e] of Object.entries(expected)) {
      const before = tf.memory().numTensors;
      const model = await loadLayersModel(await readLayersArtifacts(id, MODELS_DIR));
      let ex;
      try {
        ex = exportLayersModel(id, model);
      } finally {
        model.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      expect([ex.dim, ex.classes, ex.inputSize]).toEqual([e.dim, e.classes, 224]);
      expect(ex.opCounts.Conv).toBe(e.convs);
      expect(ex.macs.embedding / 1e6).toBeGreaterThan(e.macsM[0]);
      expect(ex.macs.embedding / 1e6).toBeLessThan(e.macsM[1]);
      const s = decodeModelSummary(ex.bytes);
      expect([s.opsetVersion, s.inputs, s.outputs]).toEqual([13, ['pixels'], ['embedding', 'logits']]);
      expect(s.metadata['framewise.embedder_id']).toBe(id);
    }
  });

  test('a layer the exporter does not know is refused with MODEL_INVALID', () => {
    const input = tf.input({ shape: [224, 224, 3] });
    const pooled = tf.layers.maxPooling2d({ poolSize: 2 }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: pooled });
    try {
      expect(() => exportLayersModel('toy', model)).toThrow(expect.objectContaining({ code: ErrorCodes.MODEL_INVALID }));
      expect(() => exportLayersModel('toy', model)).toThrow(/MaxPooling2D/);
    } finally {
      model.dispose();
    }
  });
});
