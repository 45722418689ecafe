// The recurrent head with framewise's defaults: createHead() fills and checks a spec, then builds
// the head whose math lives in head-math.ts (browser-safe, shared with the on-device client).
import { DEFAULTS } from '../../core/defaults.ts';
import { checkHeadSpec, headFromSpec, type HeadOptions, type HeadSpec, type NamedWeight, type RecurrentHead } from './head-math.ts';

export {
  headFromSpec,
  withMeans,
  type BatchStepResult,
  type ForwardResult,
  type FrameInput,
  type HeadOptions,
  type HeadSpec,
  type NamedWeight,
  type RecurrentHead,
  type StepResult,
} from './head-math.ts';

/** Fills defaults and range-checks; never mutates the caller's object. */
export function resolveHeadSpec(options: HeadOptions): HeadSpec {
  return checkHeadSpec({
    cell: DEFAULTS.cell,
    layers: DEFAULTS.layers,
    hidden: DEFAULTS.hidden,
    projection: 0,
    dropout: DEFAULTS.dropout,
    seed: DEFAULTS.seed,
    // Off for a head made directly, which then equals its stock tf.layers model; `train` makes
    // its heads with DEFAULTS.inputNorm.
    inputNorm: 0,
    ...options,
  });
}

/** Builds a head from `options` (defaults filled), with seeded initial weights or the given ones (headFromSpec). */
export function createHead(options: HeadOptions, weights?: readonly NamedWeight[]): RecurrentHead {
  return headFromSpec(resolveHeadSpec(options), weights);
}
