// The vocabulary a live frame carries below the wire format: its pixel format, why a frame may be
// dropped under the latest-wins policy, and the error for a frame that breaks the protocol. The
// protocol module re-exports these; the live rate policy in pipeline/ uses them without it.
import { ErrorCodes, FramewiseError } from './errors.ts';

export const FRAME_FORMATS = ['rgb24', 'jpeg'] as const;
export type FrameFormat = (typeof FRAME_FORMATS)[number];

/**
 * superseded: a newer frame arrived first (latest-wins); reset: dropped by a reset; invalid:
 * undecodable payload; resampled: not a frame the head takes at its rate (a newer frame holds the
 * same tick of the bundle's fps).
 */
export type DropReason = 'superseded' | 'reset' | 'invalid' | 'resampled';

/** A protocol violation; `frameIndex` names the offending frame when known. */
export class ProtocolViolation extends FramewiseError {
  constructor(
    message: string,
    readonly frameIndex?: number,
  ) {
    super(ErrorCodes.PROTOCOL, message);
  }
}
