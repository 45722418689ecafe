// The recurrent head's public API in one import (each concept lives in its own file).
export {
  createHead,
  resolveHeadSpec,
  type HeadSpec,
  type HeadOptions,
  type RecurrentHead,
  type FrameInput,
  type StepResult,
  type BatchStepResult,
  type NamedWeight,
} from './head.ts';
export { zeroState, type RecurrentState, type LayerState, type CellType } from './state.ts';
export { createTrainer, type Trainer, type TrainerOptions, type TrainChunk, type StepRecord, type TrainerState } from './trainer.ts';
export { chunkBatches, type LabeledSequence, type FeedOptions, type FeedItem } from './chunk-feeder.ts';
export { evaluatePass, type EvalSequence, type EvalPassResult, type EvalPassOptions } from './evaluate.ts';
export { learningRateSchedule, type LearningRateSchedule, type ScheduleOptions } from './schedule.ts';
export { clipByGlobalNorm } from './clip.ts';
export { saveBundle, loadBundle, toLayersModel, BUNDLE_FILES, BUNDLE_FORMAT_VERSION, type BundleInfo, type BundleMeta, type LoadedBundle } from './bundle.ts';
export { SeededRandom } from '../../core/seeded-random.ts';
