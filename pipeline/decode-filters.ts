// The ffmpeg filter chain of a decode: resample, crop or pad to a square, resize with 'area' in the
// source's own format, convert to rgb24, and log each frame's pts. Its digest names the chain in the
// embedding cache, so a change here makes old cached embeddings stale by itself.
import { createHash } from 'node:crypto';
import { DEFAULTS } from '../core/defaults.ts';
import type { CropPolicy } from '../core/types.ts';

/** What decides the pixels of a decoded frame. */
export interface DecodeFilterOptions {
  /** Output side in pixels; frames are size x size rgb24. Default DEFAULTS.inputSize (224). */
  size?: number;
  /** 'center' (default): scale the short side to size, center-crop; 'pad': fit the long side, pad black. */
  crop?: CropPolicy;
  /** Resample to this many frames per second (ffmpeg fps filter); undefined keeps the source rate. */
  fps?: number;
  /** Optional extra -vf filters inserted before the scale/crop (used by training-time augmentation). */
  preFilters?: string[];
}

/**
 * 8-bit formats the scaler may work in (planar YUV of any subsampling, full or limited range, and
 * planar RGB). Listing them between the scale and `format=rgb24` makes ffmpeg resize in the
 * source's own format (its pick is the entry that loses nothing of the source) and convert to
 * rgb24 afterwards, on the small frame: for a 640x480 yuv420p source that is 2.6 ms of CPU per
 * frame instead of 5.0 (scaling and converting in one pass at full size). rgb24 must not be in
 * the list, or the two format filters merge and the scaler converts at full size again.
 */
const SCALE_FORMATS = 'yuv420p|yuvj420p|yuv422p|yuvj422p|yuv444p|yuvj444p|gbrp';

/** The -vf chain decode runs (exported for tests and for tools that must match decode exactly). */
export function decodeFilters(options: DecodeFilterOptions = {}): string[] {
  const s = options.size ?? DEFAULTS.inputSize;
  const crop = options.crop ?? DEFAULTS.crop;
  // 'area' averages every source pixel under an output pixel: antialiased downscaling, and at
  // 640x480 -> 224 cheaper than swscale's bilinear, whose taps widen with the scale factor.
  const toRgb = [`format=${SCALE_FORMATS}`, 'format=rgb24'];
  const fit =
    crop === 'center'
      ? // The centered square of the display picture (sar: anamorphic sources keep their shape),
        // cut before scaling so the cut-off parts are never scaled, then s x s.
        [`crop=w='min(iw,ih/sar)':h='min(ih,iw*sar)'`, `scale=${s}:${s}:flags=area`, ...toRgb]
      : // Long side to s in display pixels, then black bars; rgb24 before pad so the bars are exact zeros.
        [
          `scale=w='max(1,min(${s},round(${s}*iw*sar/ih)))':h='max(1,min(${s},round(${s}*ih/(iw*sar))))':flags=area`,
          ...toRgb,
          `pad=${s}:${s}:(ow-iw)/2:(oh-ih)/2:color=black`,
        ];
  return [
    // fps first: later filters (augmentation, scaling) then work on the kept frames only.
    ...(options.fps !== undefined ? [`fps=${options.fps}`] : []),
    ...(options.preFilters ?? []),
    ...fit,
    'setsar=1',
    `${SHOWINFO}=checksum=0`,
  ];
}

/** The named showinfo filter whose log lines carry each output frame's pts. */
export const SHOWINFO = 'showinfo@framewise';

/**
 * Names the decode chain in the embedding cache (models/embedding-file.ts): a digest of
 * decodeFilters() for both crop policies, so any change to the chain makes embeddings computed
 * with the old one stale by itself; they are recomputed, never mixed with new ones.
 */
export const DECODE_REVISION = createHash('sha256')
  .update(JSON.stringify([decodeFilters({ crop: 'center' }), decodeFilters({ crop: 'pad' })]))
  .digest('hex')
  .slice(0, 12);
