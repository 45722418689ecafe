// Turns a received frame payload into the rgb24 pixels the embedder takes. JPEG is decoded with
// jpeg-js (pure JavaScript, no native build, the decoder Jimp uses): a 224x224 frame decodes in a
// few ms, and the server only decodes frames that survive the latest-wins drop.
import jpeg from 'jpeg-js';
import { ProtocolViolation, type FrameFormat } from '../core/live-frame.ts';

export function framePixels(format: FrameFormat, payload: Uint8Array, size: number, index: number): Uint8Array {
  if (format === 'rgb24') return payload;
  let img: { width: number; height: number; data: Uint8Array };
  try {
    // Caps keep a hostile JPEG header from making the decoder allocate a huge buffer.
    img = jpeg.decode(payload, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: 1, maxMemoryUsageInMB: 16 });
  } catch (err) {
    throw new ProtocolViolation(`frame ${index}: JPEG payload cannot be decoded (${(err as Error).message})`, index);
  }
  if (img.width !== size || img.height !== size) {
    throw new ProtocolViolation(`frame ${index}: JPEG is ${img.width}x${img.height}, the model takes ${size}x${size}`, index);
  }
  if (img.data.length !== size * size * 3) {
    throw new ProtocolViolation(`frame ${index}: JPEG decoded to ${img.data.length} bytes, expected ${size * size * 3}`, index);
  }
  return img.data;
}
