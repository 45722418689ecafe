// The training loop: epochs of truncated-BPTT chunks, an evaluation after each, the best weights
// kept by validation loss, a checkpoint per epoch (for --resume), and early stopping.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { SeededRandom } from '../core/seeded-random.ts';
import { saveBundle, loadBundle } from '../models/recurrent/bundle.ts';
import { chunkBatches } from '../models/recurrent/chunk-feeder.ts';
import { createHead, type NamedWeight, type RecurrentHead } from '../models/recurrent/head.ts';
import { createTrainer, type StepRecord, type TrainerState } from '../models/recurrent/trainer.ts';
import type { TrainConfig } from './config.ts';
import { appearanceDim } from '../models/motion.ts';
import { autoMotionGain } from './motion-gain.ts';
import { evaluate } from './evaluate.ts';
import { epochSequences, validationSequences, type PreparedData } from './prepare.ts';
import type { LabeledSequence } from './sequences.ts';

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
  /** Keep the last epoch's weights, not the best-scoring ones (the epoch count was chosen already). */
  keepLast?: boolean;
  /** Called after each epoch with its record and the epoch budget (progress displays). */
  onEpoch?: (record: EpochRecord, epochs: number) => void;
}

export interface FitResult {
  head: RecurrentHead;
  history: EpochRecord[];
  bestEpoch: number;
  bestValLoss: number;
}

export function newHead(
  config: Readonly<TrainConfig>,
  data: Pick<PreparedData, 'dim' | 'classes' | 'features' | 'train'>,
  weights?: readonly NamedWeight[],
): RecurrentHead {
  const motion = data.features === 'appearance+motion';
  return createHead(
    {
      inputDim: data.dim,
      classes: data.classes.length,
      cell: config.cell,
      layers: config.layers,
      hidden: config.hidden,
      projection: config.projection,
      dropout: config.dropout,
      seed: config.seed,
      inputNorm: config.inputNorm,
      // The motion stream is a change already: only the appearance part is normalised.
      inputNormDims: motion ? appearanceDim(data.dim, data.features) : undefined,
      motionGain: !motion
        ? undefined
        : config.motionGain === 'auto'
          ? autoMotionGain(data.train, data.dim, data.features, config.inputNorm)
          : config.motionGain,
    },
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
    const ck = JSON.parse(
      await readFile(join(ckptDir, 'checkpoint.json'), 'utf8').catch((err) => {
        throw new FramewiseError(ErrorCodes.USAGE, `--resume: no checkpoint in ${ckptDir}`, { cause: err });
      }),
    ) as Checkpoint;
    head = (await loadBundle(ckptDir)).head;
    ({ history, bestValLoss, bestEpoch } = ck);
    start = ck.epoch + 1;
    trainerState = {
      optimizer: { step: ck.trainer.step, m: ck.trainer.m.map(fromB64), v: ck.trainer.v.map(fromB64) },
      slots: [],
      dropoutSeed: ck.trainer.dropoutSeed,
    };
    o.log(`resumed from ${ckptDir} after epoch ${ck.epoch + 1} (best val loss ${bestValLoss.toFixed(4)} at epoch ${bestEpoch + 1})`);
  } else {
    head = newHead(config, data);
  }
  const valSeqs = validationSequences(data, config);
  const rng = new SeededRandom(config.seed + 1 + start);
  // Steps per epoch are known only after stitching/jitter; estimate from one epoch for the schedule.
  const estimate = [
    ...chunkBatches((o.fixedSequences ?? epochSequences(data, config, new SeededRandom(config.seed))).map(toFeed), {
      batch: config.batch,
      chunk: config.chunk,
      dim: data.dim,
    }),
  ].length;
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
      let loss = 0,
        acc = 0,
        frames = 0,
        gradNorm = 0,
        steps = 0;
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
      o.onEpoch?.(rec, config.epochs);
      if (!o.noCheckpoint) await writeCheckpoint(ckptDir, head, data, config, trainer.getState(), { epoch, bestEpoch, bestValLoss, history });
      if (config.patience > 0 && sinceBest >= config.patience) {
        o.log(`early stop: no better ${val ? 'validation' : 'training'} loss for ${config.patience} epochs (best: epoch ${bestEpoch + 1})`);
        break;
      }
    }
  } finally {
    trainer.dispose();
  }
  if (o.keepLast) return { head, history, bestEpoch: history.length - 1, bestValLoss: history[history.length - 1]?.valLoss ?? NaN };
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
  await saveBundle(dir, head, {
    classes: data.classes,
    embedderId: config.embedder,
    embeddingPrecision: data.precision ?? 'fp32',
    fps: config.fps,
    crop: config.crop,
    training: { ...config },
  });
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
