// The plain data that flows between stages. Typed arrays, never
// tensors: the module that creates a tensor disposes it before anything crosses a stage boundary.

/** One decoded video frame, packed RGB (rgb24), row-major, `width * height * 3` bytes. */
export interface Frame {
  streamId: string;
  /** 0-based, contiguous within a stream. */
  index: number;
  /** Presentation time in milliseconds from the stream's own timing (not wall clock). */
  timestampMs: number;
  width: number;
  height: number;
  rgb: Uint8Array;
}

/** A frame turned into a fixed-length embedding by an embedder (1280, 1024 or 256 dims). */
export interface EmbeddedFrame {
  streamId: string;
  index: number;
  timestampMs: number;
  embedding: Float32Array;
}

/**
 * The reserved label of a frame the head is not confident about (its top probability is below the
 * bundle's calibrated `unknownBelow`): "none of these". Never a class name of a bundle.
 */
export const UNKNOWN_LABEL = 'unknown';

/** The recurrent head's verdict for one frame: argmax label, its probability, and all of them. */
export interface FrameLabel {
  streamId: string;
  index: number;
  timestampMs: number;
  label: string;
  score: number;
  /** Probabilities in the bundle's class order. */
  probs: Float32Array;
}

/** A run of frames with one label, after smoothing. `endMs`/`endFrame` are exclusive. */
export interface Segment {
  label: string;
  startMs: number;
  endMs: number;
  startFrame: number;
  endFrame: number;
  /** Mean probability of `label` over the segment's frames. */
  score: number;
}

/** How a frame of another aspect ratio becomes the square model input. */
export type CropPolicy = 'center' | 'pad';
