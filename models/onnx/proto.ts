// ONNX file encoding. The schema is the subset of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto,
// proto2, package onnx) that the exporter writes, with the official field numbers; messages and
// fields we never write are left out, which protobuf decoders accept (unknown fields are skipped,
// absent optional fields take defaults). protobufjs does the wire format.
import protobuf from 'protobufjs';

const ONNX_SUBSET = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  optional string name = 1;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** TensorProto.DataType values used here (onnx.proto). */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
/** AttributeProto.AttributeType values used here. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const;

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Little-endian element bytes (the platforms onnxruntime-node ships for are little-endian). */
  rawData: Uint8Array;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  floats?: number[];
  ints?: number[];
}

export interface OnnxNode {
  name: string;
  opType: string;
  input: string[];
  output: string[];
  attribute?: OnnxAttribute[];
}

/** A graph input/output: float tensor; a string dim is symbolic (the batch); null: shape not stated
 * (an intermediate tensor exposed as an extra output, e.g. for calibration). */
export interface OnnxValueInfo {
  name: string;
  elemType: number;
  shape: (number | string)[] | null;
  docString?: string;
}

export interface OnnxModel {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  graphName: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Written in insertion order, so the same model gives the same bytes. */
  metadata: Record<string, string>;
}

let root: protobuf.Root | undefined;
function schema(): protobuf.Root {
  root ??= protobuf.parse(ONNX_SUBSET, { keepCase: true }).root;
  return root;
}

function valueInfo(v: OnnxValueInfo): object {
  return {
    name: v.name,
    ...(v.docString ? { doc_string: v.docString } : {}),
    type: {
      tensor_type: {
        elem_type: v.elemType,
        ...(v.shape ? { shape: { dim: v.shape.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d })) } } : {}),
      },
    },
  };
}

/** Serialises a model to ONNX protobuf bytes (deterministic for equal input). */
export function encodeModel(m: OnnxModel): Uint8Array {
  const ModelProto = schema().lookupType('onnx.ModelProto');
  const message = {
    ir_version: m.irVersion,
    opset_import: [{ domain: '', version: m.opsetVersion }],
    producer_name: m.producerName,
    producer_version: m.producerVersion,
    ...(m.docString ? { doc_string: m.docString } : {}),
    graph: {
      name: m.graphName,
      node: m.nodes.map((n) => ({
        name: n.name,
        op_type: n.opType,
        input: n.input,
        output: n.output,
        attribute: n.attribute ?? [],
      })),
      initializer: m.initializers.map((t) => ({ name: t.name, dims: t.dims, data_type: t.dataType, raw_data: t.rawData })),
      input: m.inputs.map(valueInfo),
      output: m.outputs.map(valueInfo),
    },
    metadata_props: Object.entries(m.metadata).map(([key, value]) => ({ key, value })),
  };
  const err = ModelProto.verify(message);
  if (err) throw new Error(`ONNX model does not fit the schema: ${err}`);
  return ModelProto.encode(ModelProto.fromObject(message)).finish();
}

/** What a reader needs to know about a file without running it. */
export interface OnnxSummary {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  opTypes: Record<string, number>;
  inputs: string[];
  outputs: string[];
  initializerCount: number;
  metadata: Record<string, string>;
}

/** Decodes the fields this schema knows; throws on bytes that are not a protobuf ModelProto. */
export function decodeModelSummary(bytes: Uint8Array): OnnxSummary {
  const ModelProto = schema().lookupType('onnx.ModelProto');
  const obj = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: true }) as {
    ir_version: number;
    producer_name: string;
    opset_import: { version: number }[];
    graph?: { node: { op_type: string }[]; input: { name: string }[]; output: { name: string }[]; initializer: unknown[] };
    metadata_props: { key: string; value: string }[];
  };
  const opTypes: Record<string, number> = {};
  for (const n of obj.graph?.node ?? []) opTypes[n.op_type] = (opTypes[n.op_type] ?? 0) + 1;
  return {
    irVersion: obj.ir_version,
    opsetVersion: obj.opset_import[0]?.version ?? 0,
    producerName: obj.producer_name,
    opTypes,
    inputs: (obj.graph?.input ?? []).map((v) => v.name),
    outputs: (obj.graph?.output ?? []).map((v) => v.name),
    initializerCount: obj.graph?.initializer.length ?? 0,
    metadata: Object.fromEntries(obj.metadata_props.map((e) => [e.key, e.value])),
  };
}
