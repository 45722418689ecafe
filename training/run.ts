// `framewise train` as a program: config, seed, data (embedded once, cached), model (scratch or
// resume), an evaluate() helper, the learning-rate schedule, and one loop that logs a line per
// epoch, keeps the best weights by validation loss, checkpoints, and stops early.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadDataset, splitDataset, type Dataset } from './dataset.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import type { Embedder } from '../models/embedder.ts';
import { evaluateSequences, argmaxLabels, type EvaluationReport } from '../models/metrics.ts';
import { saveBundle, loadBundle } from '../models/recurrent/bundle.ts';
import { chunkBatches } from '../models/recurrent/chunk-feeder.ts';
import { evaluatePass } from '../models/recurrent/evaluate.ts';
import { createHead, type NamedWeight, type RecurrentHead } from '../models/recurrent/head.ts';
import { SeededRandom } from '../core/seeded-random.ts';
import { createTrainer, type StepRecord, type TrainerState } from '../models/recurrent/trainer.ts';
import type { TrainConfig } from './config.ts';
import { writeReport } from './report.ts';
import { checkInitialLoss } from './tuning.ts';
import { embedDataset, type EmbeddedVideo } from './embed-dataset.ts';
import { stitchClips, temporalJitter, type LabeledSequence } from './sequences.ts';

export interface PreparedData {
  layout: Dataset['layout'];
  classes: string[];
  dim: number;
  /** Per training video: its views (center first, then augmented copies). */
  train: EmbeddedVideo[][];
  /** Per validation video: the center view only. */
  val: EmbeddedVideo[][];
  summary: Record<string, unknown>;
}

/** Loads, splits and embeds the dataset (cached embeddings are reused). */
export async function prepareData(config: Readonly<TrainConfig>, embedder: Embedder, log: (m: string) => void): Promise<PreparedData> {
  const ds = await loadDataset(config.data);
  const { train, val } = splitDataset(ds.videos, {
    valSplit: config.valSplit,
    seed: config.seed,
    groupBy: config.groupBy ? new RegExp(config.groupBy) : undefined,
    valGroups: config.valGroups,
  });
  if (train.length === 0) throw new FramewiseError(ErrorCodes.DATASET_INVALID, 'the split left no training videos');
  log(`dataset ${ds.root}: ${ds.layout} layout, ${ds.classes.length} classes (${ds.classes.join(', ')}), ${train.length} train / ${val.length} val videos`);
  const common = { embedder, classes: ds.classes, fps: config.fps, crop: config.crop, cacheDir: config.cacheDir, seed: config.seed, onProgress: log };
  const trainEmb = await embedDataset(train, { ...common, copies: config.augCopies });
  const valEmb = await embedDataset(val, { ...common, copies: 0 });
  const count = (vs: EmbeddedVideo[][]) => {
    const perClass: Record<string, number> = {};
    for (const v of vs) for (const l of v[0]!.labels) perClass[ds.classes[l]!] = (perClass[ds.classes[l]!] ?? 0) + 1;
    return { videos: vs.length, frames: vs.reduce((n, v) => n + v[0]!.labels.length, 0), framesPerClass: perClass, names: vs.map((v) => v[0]!.name) };
  };
  return {
    layout: ds.layout,
    classes: ds.classes,
    dim: embedder.dim,
    train: trainEmb,
    val: valEmb,
    summary: { root: ds.root, layout: ds.layout, classes: ds.classes, train: count(trainEmb), val: count(valEmb), augCopies: config.augCopies },
  };
}

/** Training sequences for one epoch: a random view of each video, temporally jittered; clips stitched. */
export function epochSequences(data: PreparedData, config: Readonly<TrainConfig>, rng: SeededRandom): LabeledSequence[] {
  const rand = () => rng.next();
  const pick = data.train.map((views) => temporalJitter(views[rng.int(views.length)]!, { rand, speed: config.speedJitter, dropProb: config.dropFrames }));
  if (data.layout !== 'folders') return pick;
  const sequences = config.stitchSequences || Math.max(config.batch, Math.ceil((2 * pick.length) / config.clipsPerSequence));
  return stitchClips(pick, { sequences, clipsPerSequence: config.clipsPerSequence, rand });
}

/** Deterministic validation sequences (center views; clips stitched with a fixed seed). */
export function validationSequences(data: PreparedData, config: Readonly<TrainConfig>): LabeledSequence[] {
  const center = data.val.map((v) => v[0]!);
  if (data.layout !== 'folders' || center.length === 0) return center;
  const rng = new SeededRandom(config.seed + 7);
  return stitchClips(center, { sequences: Math.max(4, center.length), clipsPerSequence: config.clipsPerSequence, rand: () => rng.next() });
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  report: EvaluationReport;
  /** Folder-per-class data: majority-of-frames accuracy on whole clips. */
  clipAccuracy?: number;
}

/** Streams sequences from a zero state (no dropout), as labeling does, and scores them. */
export function evaluate(head: RecurrentHead, sequences: readonly LabeledSequence[], classes: readonly string[], clips?: readonly LabeledSequence[]): EvalResult {
  const pass = evaluatePass(head, sequences.map((s) => ({ frames: s.embeddings, labels: s.labels })));
  const report = evaluateSequences(
    pass.probs.map((p, i) => ({ pred: argmaxLabels(p), truth: sequences[i]!.labels, probs: p })),
    classes,
  );
  let clipAccuracy: number | undefined;
  if (clips && clips.length > 0) {
    const clipPass = evaluatePass(head, clips.map((s) => ({ frames: s.embeddings })));
    let right = 0;
    clipPass.probs.forEach((p, i) => {
      const votes = new Array<number>(classes.length).fill(0);
      for (const l of argmaxLabels(p)) votes[l]!++;
      if (votes.indexOf(Math.max(...votes)) === clips[i]!.labels[0]) right++;
    });
    clipAccuracy = right / clips.length;
  }
  return { loss: pass.loss, accuracy: pass.accuracy, report, clipAccuracy };
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
  lr: number;
  gradNorm: number;
  framesPerSecond: number;
  seconds: number;
}

interface Checkpoint {
  epoch: number;
  bestEpoch: number;
  bestValLoss: number;
  history: EpochRecord[];
  config: TrainConfig;
  trainer: { step: number; m: string[]; v: string[]; dropoutSeed: number };
}

const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const fromB64 = (s: string) => {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

export interface FitOptions {
  log: (line: string) => void;
  /** Resume from <out>/checkpoint (architecture and config come from it). */
  resume?: boolean;
  /** Sequences to train on instead of the epoch's (e.g. --overfit N). */
  fixedSequences?: LabeledSequence[];
  /** Skip checkpoints (searches and sanity runs). */
  noCheckpoint?: boolean;
}

export interface FitResult {
  head: RecurrentHead;
  history: EpochRecord[];
  bestEpoch: number;
  bestValLoss: number;
}

export function newHead(config: Readonly<TrainConfig>, data: Pick<PreparedData, 'dim' | 'classes'>, weights?: readonly NamedWeight[]): RecurrentHead {
  return createHead(
    { inputDim: data.dim, classes: data.classes.length, cell: config.cell, layers: config.layers, hidden: config.hidden, projection: config.projection, dropout: config.dropout, seed: config.seed, inputNorm: config.inputNorm },
    weights,
  );
}

/** The training loop: epochs of truncated-BPTT chunks, validation after each, best weights kept. */
export async function fit(config: Readonly<TrainConfig>, data: PreparedData, o: FitOptions): Promise<FitResult> {
  const ckptDir = join(config.out, 'checkpoint');
  let head: RecurrentHead;
  let start = 0;
  let history: EpochRecord[] = [];
  let bestValLoss = Infinity;
  let bestEpoch = -1;
  let trainerState: TrainerState | undefined;
  if (o.resume) {
    const ck = JSON.parse(await readFile(join(ckptDir, 'checkpoint.json'), 'utf8').catch((err) => {
      throw new FramewiseError(ErrorCodes.USAGE, `--resume: no checkpoint in ${ckptDir}`, { cause: err });
    })) as Checkpoint;
    head = (await loadBundle(ckptDir)).head;
    ({ history, bestValLoss, bestEpoch } = ck);
    start = ck.epoch + 1;
    trainerState = { optimizer: { step: ck.trainer.step, m: ck.trainer.m.map(fromB64), v: ck.trainer.v.map(fromB64) }, slots: [], dropoutSeed: ck.trainer.dropoutSeed };
    o.log(`resumed from ${ckptDir} after epoch ${ck.epoch + 1} (best val loss ${bestValLoss.toFixed(4)} at epoch ${bestEpoch + 1})`);
  } else {
    head = newHead(config, data);
  }
  const valSeqs = validationSequences(data, config);
  const rng = new SeededRandom(config.seed + 1 + start);
  // Steps per epoch are known only after stitching/jitter; estimate from one epoch for the schedule.
  const estimate = [...chunkBatches((o.fixedSequences ?? epochSequences(data, config, new SeededRandom(config.seed))).map(toFeed), { batch: config.batch, chunk: config.chunk, dim: data.dim })].length;
  const trainer = createTrainer(head, {
    batch: config.batch,
    clip: config.clip,
    weightDecay: config.weightDecay,
    seed: config.seed + 2,
    schedule: { learningRate: config.learningRate, warmupSteps: config.warmupSteps, totalSteps: estimate * config.epochs, decay: config.decay },
  });
  if (trainerState) trainer.setState({ ...trainerState, slots: trainer.slots.slice() });
  let best: NamedWeight[] = head.getWeights();
  let sinceBest = 0;
  try {
    for (let epoch = start; epoch < config.epochs; epoch++) {
      const t0 = performance.now();
      const seqs = o.fixedSequences ?? epochSequences(data, config, rng);
      let loss = 0, acc = 0, frames = 0, gradNorm = 0, steps = 0;
      let last: StepRecord | undefined;
      for (const item of chunkBatches(seqs.map(toFeed), { batch: config.batch, chunk: config.chunk, dim: data.dim, rng })) {
        if (item.reset.length > 0) trainer.resetSlots(item.reset);
        last = trainer.step(item.chunk);
        loss += last.loss * last.frames;
        acc += last.accuracy * last.frames;
        frames += last.frames;
        gradNorm += last.gradNorm;
        steps++;
      }
      const seconds = (performance.now() - t0) / 1000;
      const val = valSeqs.length > 0 ? evaluate(head, valSeqs, data.classes) : undefined;
      const rec: EpochRecord = {
        epoch: epoch + 1,
        trainLoss: loss / frames,
        trainAccuracy: acc / frames,
        valLoss: val?.loss ?? NaN,
        valAccuracy: val?.accuracy ?? NaN,
        lr: last?.lr ?? NaN,
        gradNorm: gradNorm / Math.max(1, steps),
        framesPerSecond: frames / seconds,
        seconds,
      };
      history.push(rec);
      // Without a validation set the training loss picks the best epoch.
      const score = val ? rec.valLoss : rec.trainLoss;
      const improved = score < bestValLoss - 1e-4;
      if (improved) {
        bestValLoss = score;
        bestEpoch = epoch;
        best = head.getWeights();
        sinceBest = 0;
      } else sinceBest++;
      const eta = (config.epochs - epoch - 1) * seconds;
      o.log(
        `epoch ${String(epoch + 1).padStart(3)}/${config.epochs}  loss ${rec.trainLoss.toFixed(4)}  acc ${(rec.trainAccuracy * 100).toFixed(1)}%` +
          (val ? `  val loss ${rec.valLoss.toFixed(4)}  val acc ${(rec.valAccuracy * 100).toFixed(1)}%` : '') +
          `  lr ${rec.lr.toExponential(2)}  |g| ${rec.gradNorm.toFixed(2)}  ${Math.round(rec.framesPerSecond)} frames/s  ETA ${Math.round(eta)}s${improved ? '  *' : ''}`,
      );
      if (!o.noCheckpoint) await writeCheckpoint(ckptDir, head, data, config, trainer.getState(), { epoch, bestEpoch, bestValLoss, history });
      if (config.patience > 0 && sinceBest >= config.patience) {
        o.log(`early stop: no better ${val ? 'validation' : 'training'} loss for ${config.patience} epochs (best: epoch ${bestEpoch + 1})`);
        break;
      }
    }
  } finally {
    trainer.dispose();
  }
  head.setWeights(best);
  return { head, history, bestEpoch, bestValLoss };
}

function toFeed(s: LabeledSequence) {
  return { frames: s.embeddings, labels: s.labels };
}

async function writeCheckpoint(
  dir: string,
  head: RecurrentHead,
  data: PreparedData,
  config: Readonly<TrainConfig>,
  state: TrainerState,
  progress: Pick<Checkpoint, 'epoch' | 'bestEpoch' | 'bestValLoss' | 'history'>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await saveBundle(dir, head, { classes: data.classes, embedderId: config.embedder, fps: config.fps, crop: config.crop, training: { ...config } });
  const ck: Checkpoint = {
    ...progress,
    config: { ...config },
    trainer: { step: state.optimizer.step, m: state.optimizer.m.map(b64), v: state.optimizer.v.map(b64), dropoutSeed: state.dropoutSeed },
  };
  // Written under a temporary name and renamed, so a crash never leaves half a checkpoint.
  await writeFile(join(dir, 'checkpoint.json.tmp'), JSON.stringify(ck));
  await rename(join(dir, 'checkpoint.json.tmp'), join(dir, 'checkpoint.json'));
}

/** Reads the config a checkpoint was made with (resume forces its architecture). */
export async function checkpointConfig(out: string): Promise<TrainConfig | undefined> {
  try {
    return (JSON.parse(await readFile(join(out, 'checkpoint', 'checkpoint.json'), 'utf8')) as Checkpoint).config;
  } catch {
    return undefined;
  }
}

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
    await saveBundle(config.out, head, { classes: data.classes, embedderId: config.embedder, fps: config.fps, crop: config.crop, training: { ...config }, dataset: data.summary, metrics });
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
