// The live protocol between `framewise serve` and its clients (the browser app, tests, the
// benchmark), typed and validated in this one module, which both sides import: the server's Node
// code and the browser bundle (so nothing here may touch Node APIs). docs/protocol.md is the prose.
//
// Client -> server: JSON text messages (hello, reset, subscribe, unsubscribe) and binary frame
// messages (a fixed 20-byte header, then rgb24 or JPEG bytes). Server -> client: JSON text only;
// every message carries `streamId`, `index` and `timestampMs` (see ServerBase).
import type { ErrorCode } from '../core/errors.ts';
import type { FrameLabel } from '../core/types.ts';
import { FRAME_FORMATS, ProtocolViolation, type DropReason, type FrameFormat } from '../core/live-frame.ts';

export { FRAME_FORMATS, ProtocolViolation, type DropReason, type FrameFormat };

/** Bumped on any incompatible change; a hello with another version is refused. */
export const PROTOCOL_VERSION = 1;

/** The WebSocket path (the HTTP server answers everything else). */
export const WS_PATH = '/ws';

// ---------------------------------------------------------------- binary frames (client -> server)

/**
 * Frame header, little-endian:
 *   0  u8[2] magic 'F','W'     2  u8 protocol version     3  u8 format (0 rgb24, 1 jpeg)
 *   4  u32   frame index       8  f64 capture timestamp, ms on the client's clock
 *   16 u16   width             18 u16 height
 * then the payload: width*height*3 bytes of rgb24, or one JPEG image of width x height.
 */
export const FRAME_HEADER_BYTES = 20;
const MAGIC0 = 0x46; // 'F'
const MAGIC1 = 0x57; // 'W'

export interface FrameHeader {
  index: number;
  timestampMs: number;
  format: FrameFormat;
  width: number;
  height: number;
}

export interface FrameMessage extends FrameHeader {
  /** A view into the received buffer; copy it to keep it past the message handler. */
  payload: Uint8Array;
}

/** Builds a binary frame message (header + payload) ready for `ws.send`. */
export function encodeFrame(header: FrameHeader, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  const view = new DataView(out.buffer);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = PROTOCOL_VERSION;
  out[3] = FRAME_FORMATS.indexOf(header.format);
  view.setUint32(4, header.index, true);
  view.setFloat64(8, header.timestampMs, true);
  view.setUint16(16, header.width, true);
  view.setUint16(18, header.height, true);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Parses a binary frame message. Checks the header and, for rgb24, the exact payload size; a JPEG
 * payload is checked when it is decoded (only frames that are not dropped cost a decode).
 */
export function decodeFrame(data: Uint8Array, expect: { size: number }): FrameMessage {
  if (data.byteLength < FRAME_HEADER_BYTES) {
    throw protocolError(`binary message of ${data.byteLength} bytes is shorter than the ${FRAME_HEADER_BYTES}-byte frame header`);
  }
  if (data[0] !== MAGIC0 || data[1] !== MAGIC1) throw protocolError('binary message does not start with the frame magic "FW"');
  if (data[2] !== PROTOCOL_VERSION) throw protocolError(`frame header says protocol version ${data[2]}, the server speaks ${PROTOCOL_VERSION}`);
  const format = FRAME_FORMATS[data[3]!];
  if (!format) throw protocolError(`unknown frame format ${data[3]} (0 = rgb24, 1 = jpeg)`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const index = view.getUint32(4, true);
  const timestampMs = view.getFloat64(8, true);
  const width = view.getUint16(16, true);
  const height = view.getUint16(18, true);
  if (!Number.isFinite(timestampMs)) throw protocolError(`frame ${index} has a non-finite capture timestamp`);
  if (width !== expect.size || height !== expect.size) {
    throw protocolError(`frame ${index} is ${width}x${height}; the model takes ${expect.size}x${expect.size}: scale it first`, index);
  }
  const payload = data.subarray(FRAME_HEADER_BYTES);
  if (format === 'rgb24' && payload.byteLength !== width * height * 3) {
    throw protocolError(`frame ${index}: rgb24 ${width}x${height} needs ${width * height * 3} payload bytes, got ${payload.byteLength}`, index);
  }
  if (format === 'jpeg' && payload.byteLength > width * height * 3) {
    throw protocolError(`frame ${index}: a ${payload.byteLength}-byte JPEG is larger than the raw frame; send rgb24`, index);
  }
  return { index, timestampMs, format, width, height, payload };
}

/** Largest valid frame message for a model input side (raw rgb24 is the largest format). */
export function maxFrameBytes(size: number): number {
  return FRAME_HEADER_BYTES + size * size * 3;
}

/** Longest JSON control message accepted (the longest valid one is far shorter). */
export const MAX_CONTROL_BYTES = 4096;

// ---------------------------------------------------------------- JSON (client -> server)

export interface HelloMessage {
  type: 'hello';
  version: number;
  /** Free text for logs, e.g. 'browser' or 'bench'. */
  client?: string;
}
/** Clears this session's recurrent state and frame counter; pending frames are dropped. */
export interface ResetMessage {
  type: 'reset';
}
/** Receive a file job's status and labels as they are computed. */
export interface SubscribeMessage {
  type: 'subscribe';
  jobId: string;
}
export interface UnsubscribeMessage {
  type: 'unsubscribe';
  jobId: string;
}
export type ClientControl = HelloMessage | ResetMessage | SubscribeMessage | UnsubscribeMessage;

/** Parses and validates a JSON control message; anything else is E_PROTOCOL. */
export function parseClientControl(text: string): ClientControl {
  if (text.length > MAX_CONTROL_BYTES) throw protocolError(`control message of ${text.length} characters exceeds ${MAX_CONTROL_BYTES}`);
  const m = parseJsonObject(text);
  switch (m.type) {
    case 'hello':
      if (!Number.isInteger(m.version)) throw protocolError('hello needs an integer "version"');
      if (m.client !== undefined && typeof m.client !== 'string') throw protocolError('hello "client" must be a string');
      return { type: 'hello', version: m.version as number, ...(typeof m.client === 'string' ? { client: m.client.slice(0, 100) } : {}) };
    case 'reset':
      return { type: 'reset' };
    case 'subscribe':
    case 'unsubscribe':
      if (typeof m.jobId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(m.jobId)) throw protocolError(`${m.type} needs a "jobId"`);
      return { type: m.type, jobId: m.jobId };
    default:
      throw protocolError(`unknown message type ${JSON.stringify(m.type)} (expected hello, reset, subscribe, unsubscribe, or a binary frame)`);
  }
}

// ---------------------------------------------------------------- JSON (server -> client)

/**
 * Fields of every server message. `index` and `timestampMs` name the frame the message is about
 * (for a label, the labeled frame; timestampMs is the capture time the client sent, echoed, so the
 * client can measure frame-to-label latency on its own clock). Messages about no particular frame
 * carry the last frame received on that stream (-1 and 0 before the first).
 */
export interface ServerBase {
  streamId: string;
  index: number;
  timestampMs: number;
}

export interface ModelInfo {
  classes: string[];
  embedderId: string;
  /** Frames must be inputSize x inputSize. */
  inputSize: number;
  /** Frames per second the head was trained at (null: any). */
  fps: number | null;
  /** How the client makes a square frame: 'center' crop, or 'pad' (fit, black bars), as in training. */
  crop: 'center' | 'pad';
}

export interface Limits {
  /** Bytes; larger messages close the socket (1009). */
  maxPayload: number;
  /** Frames a client should have in flight (sent, not yet answered) at most. */
  maxInFlight: number;
  /** Suggested capture rate. */
  liveFps: number;
  formats: FrameFormat[];
}

export interface WelcomeMessage extends ServerBase {
  type: 'welcome';
  version: number;
  model: ModelInfo;
  limits: Limits;
}

export interface LabelMessage extends ServerBase {
  type: 'label';
  label: string;
  score: number;
  /** In model.classes order. */
  probs: number[];
  /** Receipt to label, ms on the server's clock (queue + decode + embed + head). */
  serverMs?: number;
}

/** The one way a FrameLabel goes on the wire (live sessions and file jobs alike). */
export function labelMessage(l: FrameLabel, serverMs?: number): LabelMessage {
  const msg: LabelMessage = {
    type: 'label',
    streamId: l.streamId,
    index: l.index,
    timestampMs: l.timestampMs,
    label: l.label,
    score: l.score,
    probs: Array.from(l.probs),
  };
  if (serverMs !== undefined) msg.serverMs = Math.round(serverMs * 10) / 10;
  return msg;
}

export interface DroppedMessage extends ServerBase {
  type: 'dropped';
  /** Frame indices dropped (in order; at most 256 listed, `count` has them all). */
  frames: number[];
  count: number;
  /** superseded: a newer frame arrived before this one was processed (latest-wins); reset: dropped by a reset; invalid: undecodable payload; resampled: not a frame at the bundle's rate. */
  reason: DropReason;
}

export interface StatsMessage extends ServerBase {
  type: 'stats';
  received: number;
  processed: number;
  dropped: number;
  /** Outgoing messages merged because this client read too slowly. */
  coalesced: number;
  /** Over the last stats period. */
  processedFps: number;
  droppedFps: number;
  /** Server process resident memory, bytes. */
  rssBytes: number;
  /** Live sessions on the server now. */
  sessions: number;
}

export interface ResetAckMessage extends ServerBase {
  type: 'reset';
}

export type JobStatus = 'queued' | 'running' | 'done' | 'failed';

export interface JobInfo {
  id: string;
  name: string;
  status: JobStatus;
  framesDone: number;
  /** Estimated from the probed duration and rate; 0 when unknown. */
  framesTotal: number;
  durationMs: number;
  /** URL of the video (range requests supported). */
  videoUrl: string;
  /** Download URLs by kind, once done. */
  files: { jsonl?: string; vtt?: string; segments?: string; csv?: string };
  segments?: { label: string; startMs: number; endMs: number; score: number }[];
  error?: { code: string; message: string };
  /**
   * Set when the browser cannot play the file as it is: 'converting' (progress 0..1) while ffmpeg
   * makes an H.264 MP4 copy, 'ready' once `videoUrl` points at it, 'failed' with the reason.
   */
  playback?: { state: 'converting' | 'ready' | 'failed'; progress: number; reason: string; error?: string };
}

export interface JobMessage extends ServerBase {
  type: 'job';
  job: JobInfo;
}

export interface ErrorMessage extends ServerBase {
  type: 'error';
  code: ErrorCode;
  message: string;
}

/** One finished training epoch of a Teach run (NaN-free: null where there is no validation set). */
export interface TeachEpoch {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  seconds: number;
}

export type TeachStatus = 'preparing' | 'training' | 'ready' | 'failed';

/**
 * Progress of the Teach view's training, sent to every session (streamId 'teach'): 'preparing'
 * (embedding the clips), 'training' after each epoch (with the curves so far), then 'ready' (the
 * new bundle is the server's model: reconnect for a session on it) or 'failed' (the previous model
 * stays; `error` says why).
 */
export interface TeachMessage extends ServerBase {
  type: 'teach';
  status: TeachStatus;
  runId: string;
  /** Epochs done and the budget (early stopping may end sooner). */
  epoch: number;
  epochs: number;
  /** Seconds left at the last epoch's pace; null before the first epoch. */
  etaSeconds: number | null;
  history: TeachEpoch[];
  /** With 'ready': the model now served. */
  model?: ModelInfo;
  error?: { code: string; message: string };
}

export type ServerMessage = TeachMessage | WelcomeMessage | LabelMessage | DroppedMessage | StatsMessage | ResetAckMessage | JobMessage | ErrorMessage;

const SERVER_TYPES = new Set(['welcome', 'label', 'dropped', 'stats', 'reset', 'job', 'error', 'teach']);

/** Validates a server message (clients use it so a bad server or a proxy cannot crash them). */
export function parseServerMessage(text: string): ServerMessage {
  const m = parseJsonObject(text);
  if (typeof m.type !== 'string' || !SERVER_TYPES.has(m.type)) throw protocolError(`unknown server message type ${JSON.stringify(m.type)}`);
  if (typeof m.streamId !== 'string' || !Number.isInteger(m.index) || typeof m.timestampMs !== 'number') {
    throw protocolError(`server message "${m.type}" lacks streamId/index/timestampMs`);
  }
  const need = (ok: boolean, what: string) => {
    if (!ok) throw protocolError(`server message "${m.type}": ${what}`);
  };
  switch (m.type) {
    case 'label':
      need(typeof m.label === 'string' && typeof m.score === 'number' && Array.isArray(m.probs), 'needs label, score, probs');
      break;
    case 'dropped':
      need(Array.isArray(m.frames) && typeof m.reason === 'string', 'needs frames and reason');
      break;
    case 'error':
      need(typeof m.code === 'string' && typeof m.message === 'string', 'needs code and message');
      break;
    case 'welcome':
      need(typeof m.model === 'object' && m.model !== null && typeof m.limits === 'object', 'needs model and limits');
      break;
    case 'job':
      need(typeof m.job === 'object' && m.job !== null, 'needs job');
      break;
    case 'teach':
      need(typeof m.status === 'string' && typeof m.runId === 'string' && Array.isArray(m.history), 'needs status, runId, history');
      break;
  }
  return m as unknown as ServerMessage;
}

function parseJsonObject(text: string): Record<string, unknown> {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw protocolError(`message is not valid JSON: ${text.slice(0, 60)}`);
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw protocolError('message must be a JSON object with a "type"');
  return m as Record<string, unknown>;
}

function protocolError(message: string, frameIndex?: number): ProtocolViolation {
  return new ProtocolViolation(message, frameIndex);
}
