// `framewise train` as a program: config, seed, data (embedded once, cached), the initial-loss
// check, the fit loop, an evaluation of the kept weights, then the bundle and its report.
import { DEFAULTS } from '../core/defaults.ts';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { saveBundle } from '../models/recurrent/bundle.ts';
import type { TrainConfig } from './config.ts';
import { evaluate, type EvalResult } from './evaluate.ts';
import { fit, type EpochRecord, type FitOptions } from './fit.ts';
import { validationSequences, type PreparedData } from './prepare.ts';
import { argmaxLabels } from '../models/metrics.ts';
import { evaluatePass } from '../models/recurrent/evaluate.ts';
import { clipAccuracyOf, perVideoRows } from './per-video.ts';
import { writeReport } from './report.ts';
import { describeScope } from './report-scope.ts';
import { crossValidateEpochs } from './cross-validate.ts';
import { checkInitialLoss } from './tuning.ts';
import { calibrateUnknown, calibrateUnknownFrom } from './unknown-threshold.ts';
import { appearanceDim as appearanceDimOf } from '../models/motion.ts';

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
export async function trainBundle(
  config: Readonly<TrainConfig>,
  data: PreparedData,
  o: { log: (m: string) => void; resume?: boolean; onEpoch?: FitOptions['onEpoch'] },
): Promise<TrainedBundle> {
  checkInitialLoss(config, data, o.log);
  o.log(
    `each epoch: loss and accuracy on that epoch's training sequences (augmented, dropout on)${data.val.length > 0 ? ', val on the held-out validation videos' : ''}; * = best ${data.val.length > 0 ? 'validation' : 'training'} loss so far (the weights kept)`,
  );
  const t0 = performance.now();
  // Without a validation set, cross-validation picks the epoch count, then every clip trains.
  const cv = data.val.length === 0 && !o.resume && config.folds >= 2 ? await crossValidateEpochs(config, data, o.log) : undefined;
  const fitConfig: Readonly<TrainConfig> = cv ? { ...config, epochs: cv.epochs, patience: 0 } : config;
  const { head, history, bestEpoch } = await fit(fitConfig, data, { log: o.log, resume: o.resume, onEpoch: o.onEpoch, keepLast: cv !== undefined });
  try {
    const gain = head.spec.motionGain;
    if (gain !== undefined) {
      const why = config.motionGain === 'auto' ? `auto: ${DEFAULTS.motionVariance}x the appearance's variance on the training clips` : '--motion-gain';
      o.log(`motion stream scaled by ${gain.toFixed(2)} before the head (${why})`);
    }
    const valSeqs = validationSequences(data, config);
    const onVal = valSeqs.length > 0;
    const clips = data.layout === 'folders' ? (onVal ? data.val : data.train).map((v) => v[0]!) : undefined;
    const ev = evaluate(head, onVal ? valSeqs : data.train.map((v) => v[0]!), data.classes, clips);
    const scoredVideos = (onVal ? data.val : data.train).map((v) => v[0]!);
    const rows = perVideoRows(
      evaluatePass(
        head,
        scoredVideos.map((v) => ({ frames: v.embeddings })),
      ).probs.map((p, i) => ({ name: scoredVideos[i]!.name, pred: argmaxLabels(p), truth: scoredVideos[i]!.labels })),
      data.classes,
      { singleLabel: data.layout === 'folders' },
    );
    const last = history[history.length - 1];
    const earlyStop = last && last.epoch < config.epochs && config.patience > 0 ? { epoch: last.epoch, patience: config.patience } : undefined;
    const scope = describeScope({
      config,
      data,
      onVal,
      bestEpoch: bestEpoch + 1,
      scoredFrames: ev.report.frames,
      videoFrames: rows.reduce((n, r) => n + r.frames, 0),
      sequences: valSeqs.length,
    });
    const crossValidation = cv && { by: cv.by, folds: cv.folds, epochs: cv.epochs, valLoss: cv.valLoss, valAccuracy: cv.valAccuracy };
    const metrics = {
      on: onVal ? 'validation' : 'training (no validation set)',
      bestEpoch: bestEpoch + 1,
      loss: ev.loss,
      clipAccuracy: ev.clipAccuracy,
      crossValidation,
      ...ev.report,
    };
    // The threshold from frames the head did not train on: the validation videos, else every clip as
    // cross-validation's fold heads saw it; only without either from the head's own training frames.
    const trainClips = data.train.map((v) => v[0]!);
    const appearanceDim = appearanceDimOf(data.dim, data.features);
    const unknown =
      !onVal && cv
        ? calibrateUnknownFrom({ ...cv.heldOut, on: 'cross-validation' }, { train: trainClips, classes: data.classes.length, appearanceDim })
        : calibrateUnknown(head, scoredVideos, onVal ? 'validation' : 'training', trainClips, appearanceDim);
    await mkdir(config.out, { recursive: true });
    await saveBundle(config.out, head, {
      classes: data.classes,
      embedderId: config.embedder,
      features: data.features,
      embeddingPrecision: data.precision ?? 'fp32',
      fps: config.fps,
      crop: config.crop,
      training: { ...fitConfig },
      dataset: data.summary,
      metrics,
      unknownBelow: unknown.unknownBelow,
      unknownFar: unknown.unknownFar,
      unknownCalibration: unknown.record,
    });
    const report = await writeReport(join(config.out, 'report'), {
      title: `framewise training report: ${config.data}`,
      scope,
      history,
      bestEpoch: bestEpoch + 1,
      folds: cv?.histories.map((h, i) => ({ name: `fold ${i + 1}`, history: h, bestEpoch: cv.epochs })),
      earlyStop,
      evaluation: { ...ev.report, clipAccuracy: ev.clipAccuracy ?? (data.layout === 'folders' ? clipAccuracyOf(rows) : undefined) },
      evaluationName: onVal ? 'validation' : 'training data',
      perVideo: rows,
      config: { ...fitConfig },
      dataset: data.summary,
    });
    const pct = (x: number) => (x * 100).toFixed(1);
    const f1 = ev.report.f1;
    o.log(scope);
    o.log(
      `${metrics.on}, epoch ${bestEpoch + 1}: frame accuracy ${pct(ev.report.accuracy)}%, macro F1 ${pct(ev.report.macroF1)}, ` +
        `Edit ${pct(ev.report.edit)}, F1@{10,25,50} ${pct(f1['10'])}/${pct(f1['25'])}/${pct(f1['50'])}` +
        (ev.clipAccuracy !== undefined ? `, clip accuracy ${pct(ev.clipAccuracy)}%` : ''),
    );
    const seconds = (performance.now() - t0) / 1000;
    o.log(
      `unknown below ${unknown.unknownBelow} (${unknown.record.quantile * 100}% of the ${unknown.record.correctFrames} correctly labeled ${unknown.record.on} frames are below it; change it with label --unknown-below P)` +
        (unknown.unknownFar
          ? ` or farther from every class's mean training embedding than its own frames (cosine distance limits ${unknown.unknownFar.beyond.join(', ')})`
          : ''),
    );
    o.log(`trained in ${seconds.toFixed(1)} s; bundle ${config.out}; report ${report.html}`);
    return { dir: config.out, report, evaluation: ev, history, bestEpoch, seconds };
  } finally {
    head.dispose();
  }
}
