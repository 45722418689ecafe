// How far the int8 export may drift from the fp32 one before it is refused. The fp32 ONNX file
// (itself verified against tfjs to 1e-4) is the reference; both run on the same frames.
//
// Thresholds, chosen from measurements here (MobileNet v2 1.0 calibrated on 32 frames of the ud810
// clips, checked on 32 other frames of them and on the 9 photos): median cosine 0.990 (clips) and
// 0.994 (photos), lowest 0.985 / 0.991; v1 0.25: 0.994 / 0.998. A scale off by a factor of two in one
// layer drops the median below 0.9. So: median >= 0.985 and 5th percentile >= 0.97 over the check
// frames, and the ImageNet top-1 class of the photos the same as fp32's for at least 2 in 3 of them
// (v1 0.25's logits are flat enough that a near-tie flips on some photos).
import type * as ort from 'onnxruntime-node';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { runSession, type RgbFrame } from './verify.ts';

export const INT8_THRESHOLDS = {
  /** Median over the check frames of cos(int8 embedding, fp32 embedding). */
  cosineMedian: 0.985,
  /** 5th percentile of the same. */
  cosineP5: 0.97,
  /** Share of the photos whose ImageNet top-1 class is fp32's. */
  top1Agreement: 2 / 3,
  /** Share of a bundle's frame labels that equal fp32's (checked per bundle, see label agreement). */
  labelAgreement: 0.98,
} as const;

export interface Int8Agreement {
  ok: boolean;
  /** Over the check frames (disjoint from the calibration frames). */
  cosineMedian: number;
  cosineP5: number;
  cosineMin: number;
  checkFrames: number;
  /** ImageNet top-1 agreement with fp32 on the photos; null when there were none. */
  top1Agreement: number | null;
  photos: number;
  thresholds: typeof INT8_THRESHOLDS;
  reason?: string;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  const d = Math.sqrt(na * nb);
  return d > 0 ? dot / d : na === nb ? 1 : 0;
}

/** q-quantile of sorted values (nearest rank). */
const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * sorted.length)))]!;

function argmaxRows(logits: Float32Array, rows: number): number[] {
  const c = logits.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let k = 0;
    for (let j = 1; j < c; j++) if (logits[r * c + j]! > logits[r * c + k]!) k = j;
    return k;
  });
}

async function embedAll(session: ort.InferenceSession, frames: readonly RgbFrame[], size: number) {
  const emb: Float32Array[] = [];
  const top1: number[] = [];
  for (let i = 0; i < frames.length; i += 8) {
    const batch = frames.slice(i, i + 8);
    const r = await runSession(session, batch, size);
    const dim = r.embedding.length / batch.length;
    for (let k = 0; k < batch.length; k++) emb.push(r.embedding.slice(k * dim, (k + 1) * dim));
    top1.push(...argmaxRows(r.logits, batch.length));
  }
  return { emb, top1 };
}

/** Runs both sessions on the check frames and the photos; never throws for a disagreement. */
export async function measureAgreement(
  fp32: ort.InferenceSession,
  int8: ort.InferenceSession,
  check: readonly RgbFrame[],
  photos: readonly RgbFrame[],
  size: number,
): Promise<Int8Agreement> {
  const a = await embedAll(fp32, check, size);
  const b = await embedAll(int8, check, size);
  const cos = a.emb.map((e, i) => cosine(e, b.emb[i]!)).sort((x, y) => x - y);
  let top1Agreement: number | null = null;
  if (photos.length) {
    const pa = await embedAll(fp32, photos, size);
    const pb = await embedAll(int8, photos, size);
    top1Agreement = pa.top1.filter((c, i) => c === pb.top1[i]).length / photos.length;
  }
  const r: Int8Agreement = {
    ok: true,
    cosineMedian: quantile(cos, 0.5),
    cosineP5: quantile(cos, 0.05),
    cosineMin: cos[0] ?? NaN,
    checkFrames: cos.length,
    top1Agreement,
    photos: photos.length,
    thresholds: INT8_THRESHOLDS,
  };
  const t = INT8_THRESHOLDS;
  const fails: string[] = [];
  if (!(r.cosineMedian >= t.cosineMedian)) fails.push(`median cosine to fp32 ${r.cosineMedian.toFixed(4)} < ${t.cosineMedian}`);
  if (!(r.cosineP5 >= t.cosineP5)) fails.push(`5th-percentile cosine ${r.cosineP5.toFixed(4)} < ${t.cosineP5}`);
  if (top1Agreement !== null && !(top1Agreement >= t.top1Agreement))
    fails.push(`ImageNet top-1 agrees with fp32 on ${(top1Agreement * 100).toFixed(0)}% of the photos < ${(t.top1Agreement * 100).toFixed(0)}%`);
  if (cos.length === 0) fails.push('no check frames');
  if (fails.length) Object.assign(r, { ok: false, reason: fails.join('; ') });
  return r;
}

/** One line with the figures, for logs and refusals. */
export function describeAgreement(a: Int8Agreement): string {
  const top1 = a.top1Agreement === null ? 'no photos' : `ImageNet top-1 agreement ${(a.top1Agreement * 100).toFixed(0)}% on ${a.photos} photos`;
  return `cosine to fp32 median ${a.cosineMedian.toFixed(4)}, 5th percentile ${a.cosineP5.toFixed(4)} over ${a.checkFrames} check frames; ${top1}`;
}

export function assertAgreement(a: Int8Agreement, id: string, what: string): void {
  if (!a.ok) {
    throw new FramewiseError(
      ErrorCodes.MODEL_INVALID,
      `refusing int8 ONNX file ${what} for "${id}": ${a.reason} (${describeAgreement(a)}); rebuild it with \`framewise models export-onnx ${id} --precision int8 --calibrate DIR\``,
    );
  }
}
