// framewise as a library: `import { openModel, labelVideo } from 'framewise'`. The stages are
// RxJS operators over plain data (decode -> embed -> label), `labelVideo` wires them for a file
// with the output files, and `createServer` is the live server of `framewise serve`.
export { ErrorCodes, FramewiseError, type ErrorCode } from './core/errors.ts';
export type { CropPolicy, EmbeddedFrame, Frame, FrameLabel, Segment } from './core/types.ts';
export { openModel, type OpenModel, type OpenModelOptions } from './models/open-model.ts';
export { loadEmbeddingEngine, type EngineRequest } from './models/engine-choice.ts';
export type { Embedder } from './models/embedder.ts';
export type { BackendRequest } from './models/backend.ts';
export { decode, decodeFrames, decodeThrough, type DecodeOptions } from './pipeline/decode.ts';
export { probe, type VideoInfo } from './pipeline/probe.ts';
export { embed, type EmbedOptions } from './pipeline/embed-stage.ts';
export { label, type LabelOptions } from './pipeline/label-stage.ts';
export { segmentLabels } from './pipeline/segment.ts';
export { labelVideo, type LabelingModel, type LabelVideoOptions, type LabelVideoResult } from './pipeline/run-label.ts';
export { createServer, type RunningServer, type ServerConfig } from './server/server.ts';
