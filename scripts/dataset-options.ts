// The options that say how to read a dataset, shared by `train` and `eval`: a forced layout and
// what the annotation tools' exports do not carry themselves (the ELAN tier, the frame rate of
// Label Studio's frame numbers).
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { DATASET_LAYOUTS, type DatasetLayout, type DatasetOptions } from '../training/dataset.ts';
import { num, str, type OptionSpec, type OptionValues } from './command.ts';

export const datasetOptions: Record<string, OptionSpec> = {
  layout: { type: 'string', valueName: 'NAME', description: `dataset layout instead of detecting it: ${DATASET_LAYOUTS.join(', ')}` },
  tier: { type: 'string', valueName: 'NAME', description: 'ELAN: the tier to read (default: the first time-aligned tier)' },
  'ls-config': { type: 'string', valueName: 'FILE', description: "Label Studio: the project's labeling config (XML), for the <Video> frame rate" },
  'ls-fps': { type: 'string', valueName: 'N', description: "Label Studio: frame rate of the project's timeline (its <Video frameRate>)" },
};

export function datasetOptionsFrom(values: OptionValues): DatasetOptions | undefined {
  const layout = str(values, 'layout');
  if (layout !== undefined && !(DATASET_LAYOUTS as readonly string[]).includes(layout)) {
    throw new FramewiseError(ErrorCodes.USAGE, `--layout ${layout}: choose from ${DATASET_LAYOUTS.join(', ')}`);
  }
  const tier = str(values, 'tier');
  const config = str(values, 'ls-config');
  const fps = num(values, 'ls-fps', DEFAULTS.fpsRange.min, DEFAULTS.fpsRange.max);
  if (layout === undefined && tier === undefined && config === undefined && fps === undefined) return undefined;
  return {
    layout: layout as DatasetLayout | undefined,
    tier,
    labelStudio: config !== undefined || fps !== undefined ? { config, fps } : undefined,
  };
}
