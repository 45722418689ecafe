// The precision part of `framewise bench`: fp32 against int8 for one embedder, on the same ONNX
// Runtime workers, in interleaved rounds (embed-only on pre-decoded frames, end-to-end `label` on
// the same clip), plus the agreement figures: the int8 export's embedding cosine to fp32 (from its
// record) and the share of frame labels that a bundle trained on fp32 embeddings gives the same on
// real clips whichever precision embeds them.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Frame } from '../core/types.ts';
import type { Embedder } from '../models/embedder.ts';
import { loadEmbeddingEngine, type EngineEmbedder } from '../models/engine-choice.ts';
import { loadBundle, type BundleMeta } from '../models/recurrent/bundle.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { int8LabelAgreement } from '../models/onnx/int8-label-check.ts';

const run = promisify(execFile);

export interface PrecisionFigures {
  embedOnly: { fp32: number; int8: number };
  endToEnd: { fp32: number; int8: number };
  agreement: { cosineMedian: number; cosineP5: number; labelAgreement: number | null; labelFrames: number };
  /** Medians of per-round ratios int8 / fp32. */
  ratios: { embedOnly: number; endToEnd: number };
  /** CPU per frame of the label process beyond ffmpeg (ms), per precision. */
  processMsPerFrame: { fp32: number; int8: number };
  int8File: string;
}

export interface PrecisionBenchOptions {
  id: string;
  modelsDir: string | undefined;
  /** Where the ONNX exports and the agreement bundle are kept (FRAMEWISE_CACHE). */
  cacheDir: string;
  workers: number;
  rounds: number;
  embedSeconds: number;
  clip: string;
  sample: readonly Frame[];
  bundle: { head: RecurrentHead; meta: BundleMeta };
  work: string;
  /** Labeled clips for the label agreement (a `framewise train` dataset); skipped when absent. */
  agreementData: string | undefined;
  /** A bundle trained on fp32 embeddings of agreementData; trained here (child process) when absent. */
  agreementBundle: string | undefined;
  bin: string;
  note: (l: string) => void;
  embedOnly: (e: Embedder, sample: readonly Frame[], seconds: number) => Promise<{ fps: number; cores: number }>;
  endToEnd: (o: {
    clip: string;
    embedder: Embedder;
    head: RecurrentHead;
    meta: BundleMeta;
    out: string;
  }) => Promise<{ fps: number; processMsPerFrame: number }>;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

export async function benchPrecision(o: PrecisionBenchOptions): Promise<PrecisionFigures> {
  const common = { id: o.id, engine: 'onnx' as const, modelsDir: o.modelsDir, cacheDir: o.cacheDir, workers: o.workers, log: o.note, onProgress: o.note };
  const fp32 = await loadEmbeddingEngine({ ...common, precision: 'fp32' });
  let int8: EngineEmbedder | undefined;
  try {
    // Made on first use, calibrated on the shared data next to the models (never on the bench clip).
    int8 = await loadEmbeddingEngine({ ...common, precision: 'int8' });
    const { findInt8 } = await import('../models/onnx/int8-cache.ts');
    const record = (await findInt8(o.id, o.cacheDir, o.modelsDir))!;
    const per: Record<string, number[]> = {};
    const push = (k: string, v: number) => (per[k] ??= []).push(v);
    for (let r = 0; r < o.rounds; r++) {
      for (const [name, e] of [
        ['fp32', fp32],
        ['int8', int8],
      ] as const)
        push(`only.${name}`, (await o.embedOnly(e, o.sample, o.embedSeconds)).fps);
      for (const [name, e] of [
        ['fp32', fp32],
        ['int8', int8],
      ] as const) {
        const e2e = await o.endToEnd({ clip: o.clip, embedder: e, ...o.bundle, out: join(o.work, `e2e-${o.id}-${name}`) });
        push(`e2e.${name}`, e2e.fps);
        push(`proc.${name}`, e2e.processMsPerFrame);
      }
      push('ratio.only', per['only.int8']!.at(-1)! / per['only.fp32']!.at(-1)!);
      push('ratio.e2e', per['e2e.int8']!.at(-1)! / per['e2e.fp32']!.at(-1)!);
      o.note(
        `precision round ${r + 1}/${o.rounds} (${o.id}): embed-only fp32 ${per['only.fp32']!.at(-1)!.toFixed(0)}, int8 ${per['only.int8']!.at(-1)!.toFixed(0)}; e2e fp32 ${per['e2e.fp32']!.at(-1)!.toFixed(0)}, int8 ${per['e2e.int8']!.at(-1)!.toFixed(0)} frames/s`,
      );
    }
    let labelShare: { share: number; frames: number } | undefined;
    if (o.agreementData && existsSync(o.agreementData)) {
      // Kept in the cache: training it takes minutes, and the same data gives the same bundle.
      const bundle = o.agreementBundle ?? join(o.cacheDir, 'bench', `agreement-${o.id}`);
      if (!existsSync(join(bundle, 'framewise.json'))) {
        o.note(`training a bundle on fp32 embeddings of ${o.agreementData} for the label agreement (${bundle})`);
        await run(
          process.execPath,
          [
            o.bin,
            'train',
            '--data',
            o.agreementData,
            '--out',
            bundle,
            '--embedder',
            o.id,
            '--precision',
            'fp32',
            '--engine',
            'onnx',
            '--cache-dir',
            o.cacheDir,
          ],
          { maxBuffer: 64 << 20 },
        );
      }
      // The check `label` runs on a bundle's first use with int8 (the same head inputs, motion
      // included, and the same unknown rule), here on every frame of every clip and never cached.
      const { head, meta } = await loadBundle(bundle);
      try {
        const r = await int8LabelAgreement({
          bundleDir: bundle,
          head,
          meta,
          int8File: record.path,
          sources: [o.agreementData],
          modelsDir: o.modelsDir,
          cacheDir: join(o.work, 'label-check'),
          clips: Number.MAX_SAFE_INTEGER,
          framesPerClip: Number.MAX_SAFE_INTEGER,
        });
        labelShare = { share: r.agreement ?? NaN, frames: r.frames };
      } finally {
        head.dispose();
      }
    }
    const m = (k: string) => median(per[k]!);
    return {
      embedOnly: { fp32: m('only.fp32'), int8: m('only.int8') },
      endToEnd: { fp32: m('e2e.fp32'), int8: m('e2e.int8') },
      agreement: {
        cosineMedian: record.sidecar.agreement.cosineMedian,
        cosineP5: record.sidecar.agreement.cosineP5,
        labelAgreement: labelShare?.share ?? null,
        labelFrames: labelShare?.frames ?? 0,
      },
      ratios: { embedOnly: m('ratio.only'), endToEnd: m('ratio.e2e') },
      processMsPerFrame: { fp32: m('proc.fp32'), int8: m('proc.int8') },
      int8File: record.path,
    };
  } finally {
    await fp32.close();
    await int8?.close();
  }
}
