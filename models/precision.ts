// Numeric precision of the embedder: fp32 (the ONNX export or tfjs) or int8 (the quantized ONNX
// export, models/onnx/int8-cache.ts). `auto` takes int8 only where its export passed verification
// for that model and the speed measured at export, on a CPU of this model, is higher than fp32's;
// it never makes an export by itself (calibrating costs tens of seconds), `int8` does.
import { cpus } from 'node:os';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';

export const PRECISIONS = ['auto', 'fp32', 'int8'] as const;
export type PrecisionRequest = (typeof PRECISIONS)[number];
export type Precision = Exclude<PrecisionRequest, 'auto'>;

export function parsePrecisionRequest(value: string | undefined): PrecisionRequest {
  if (value === undefined || value === '') return 'auto';
  if ((PRECISIONS as readonly string[]).includes(value)) return value as PrecisionRequest;
  throw new FramewiseError(ErrorCodes.USAGE, `unknown precision "${value}": use one of ${PRECISIONS.join(', ')}`);
}

/** What auto needs to know about an existing int8 export (its sidecar's figures). */
export interface Int8Record {
  ok: boolean;
  cpu: string;
  fp32Fps: number;
  int8Fps: number;
}

export interface PrecisionChoice {
  precision: Precision;
  /** Why, in words, for the printed line. */
  reason: string;
}

/** auto's rule; `record` is the newest verified int8 export of the model, if any. */
export function chooseAutoPrecision(id: string, record: Int8Record | undefined, cpu: string = cpus()[0]?.model.trim() ?? 'unknown'): PrecisionChoice {
  if (!record) return { precision: 'fp32', reason: `no int8 export of ${id} here (make one: framewise models export-onnx ${id} --precision int8)` };
  if (!record.ok) return { precision: 'fp32', reason: `the int8 export of ${id} failed verification` };
  if (record.cpu !== cpu)
    return { precision: 'fp32', reason: `the int8 export's speed was measured on "${record.cpu}", not this CPU ("${cpu}"); export again here to measure it` };
  const ratio = record.int8Fps / record.fp32Fps;
  if (!(ratio > 1))
    return {
      precision: 'fp32',
      reason: `int8 measured ${ratio.toFixed(2)}x fp32's speed on this CPU (${record.int8Fps.toFixed(0)} vs ${record.fp32Fps.toFixed(0)} frames per CPU-second)`,
    };
  return {
    precision: 'int8',
    reason: `verified, and ${ratio.toFixed(2)}x fp32's speed on this CPU (${record.int8Fps.toFixed(0)} vs ${record.fp32Fps.toFixed(0)} frames per CPU-second, one thread)`,
  };
}
