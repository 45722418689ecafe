// `framewise train` as a program: config, seed, data (embedded once, cached), the initial-loss
// check, the fit loop, an evaluation of the kept weights, then the bundle and its report.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { saveBundle } from '../models/recurrent/bundle.ts';
import type { TrainConfig } from './config.ts';
import { evaluate, type EvalResult } from './evaluate.ts';
import { fit, type EpochRecord } from './fit.ts';
import { validationSequences, type PreparedData } from './prepare.ts';
import { writeReport } from './report.ts';
import { checkInitialLoss } from './tuning.ts';

export interface TrainedBundle {
  dir: string;
  report: { html: string; json: string };
  evaluation: EvalResult;
  history: EpochRecord[];
  bestEpoch: number;
  seconds: number;
}

/**
 * The whole `framewise train` job on prepared data: initial-loss check, fit, evaluation on the
 * validation set (the training set when there is none), the bundle and the report.
 */
export async function trainBundle(config: Readonly<TrainConfig>, data: PreparedData, o: { log: (m: string) => void; resume?: boolean }): Promise<TrainedBundle> {
  checkInitialLoss(config, data, o.log);
  const t0 = performance.now();
  const { head, history, bestEpoch } = await fit(config, data, { log: o.log, resume: o.resume });
  try {
    const valSeqs = validationSequences(data, config);
    const onVal = valSeqs.length > 0;
    const clips = data.layout === 'folders' ? (onVal ? data.val : data.train).map((v) => v[0]!) : undefined;
    const ev = evaluate(head, onVal ? valSeqs : data.train.map((v) => v[0]!), data.classes, clips);
    const metrics = { on: onVal ? 'validation' : 'training (no validation set)', bestEpoch: bestEpoch + 1, loss: ev.loss, clipAccuracy: ev.clipAccuracy, ...ev.report };
    await mkdir(config.out, { recursive: true });
    await saveBundle(config.out, head, { classes: data.classes, embedderId: config.embedder, embeddingPrecision: data.precision ?? 'fp32', fps: config.fps, crop: config.crop, training: { ...config }, dataset: data.summary, metrics });
    const report = await writeReport(join(config.out, 'report'), {
      title: `framewise training report: ${config.data}`,
      history,
      evaluation: { ...ev.report, clipAccuracy: ev.clipAccuracy },
      config: { ...config },
      dataset: data.summary,
    });
    const pct = (x: number) => (x * 100).toFixed(1);
    const f1 = ev.report.f1;
    o.log(
      `best epoch ${bestEpoch + 1}; ${metrics.on}: frame accuracy ${pct(ev.report.accuracy)}%, macro F1 ${pct(ev.report.macroF1)}, ` +
        `Edit ${pct(ev.report.edit)}, F1@{10,25,50} ${pct(f1['10'])}/${pct(f1['25'])}/${pct(f1['50'])}` +
        (ev.clipAccuracy !== undefined ? `, clip accuracy ${pct(ev.clipAccuracy)}%` : ''),
    );
    const seconds = (performance.now() - t0) / 1000;
    o.log(`trained in ${seconds.toFixed(1)} s; bundle ${config.out}; report ${report.html}`);
    return { dir: config.out, report, evaluation: ev, history, bestEpoch, seconds };
  } finally {
    head.dispose();
  }
}
