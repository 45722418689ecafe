// `framewise queue add|status|retry-failed`: the producer side of scale-out labeling (BullMQ on
// Redis). `add` queues one job per video with everything a worker on another machine needs;
// `framewise worker` (scripts/commands/worker.ts) runs them.
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { expandInputs } from '../../pipeline/inputs.ts';
import { parseFormats } from '../../pipeline/sinks/index.ts';
import { bundleLocation, identifyInput, inputLocation, outputLocation } from '../../queue/locations.ts';
import {
  addLabelJobs,
  bundleId,
  closeRedis,
  connectRedis,
  JOB_DATA_VERSION,
  labelJobOptions,
  openLabelQueue,
  type LabelJobData,
} from '../../queue/label-queue.ts';
import { formatStatus, queueStatus, retryFailed } from '../../queue/status.ts';
import { bool, num, str, type CommandSpec, type OptionValues } from '../command.ts';

const ACTIONS = ['add', 'status', 'retry-failed'] as const;

export const REDIS_OPTION = {
  type: 'string' as const,
  valueName: 'URL',
  defaultHelp: 'redis://127.0.0.1:6379',
  env: 'FRAMEWISE_REDIS',
  description: 'Redis holding the queue',
};

export const QUEUE_OPTION = { type: 'string' as const, valueName: 'NAME', default: DEFAULTS.queue.name, description: 'queue name' };

export const CONNECT_TIMEOUT_OPTION = {
  type: 'string' as const,
  valueName: 'MS',
  default: String(DEFAULTS.queue.connectTimeoutMs),
  description: 'how long to try reaching Redis at start before E_QUEUE_UNAVAILABLE',
};

export const command: CommandSpec = {
  name: 'queue',
  summary: 'Queue videos for `framewise worker` processes on any machine (add), show progress (status), re-run failed jobs (retry-failed).',
  args: '<add|status|retry-failed> [inputs...]',
  minArgs: 1,
  options: {
    redis: REDIS_OPTION,
    queue: QUEUE_OPTION,
    'connect-timeout': CONNECT_TIMEOUT_OPTION,
    model: { type: 'string', short: 'm', valueName: 'DIR', description: 'add: trained model bundle, on the shared mount' },
    out: { type: 'string', short: 'o', valueName: 'DIR', default: '.', description: 'add: output folder on the shared mount' },
    formats: { type: 'string', valueName: 'LIST', default: 'jsonl,csv,vtt,activitynet', description: 'add: outputs to write' },
    'every-frame': { type: 'boolean', description: 'add: per-frame files get one line per source frame' },
    'min-segment-ms': {
      type: 'string',
      valueName: 'MS',
      default: String(DEFAULTS.smoothing.minSegmentMs),
      description: 'add: shorter segments merge into a neighbour',
    },
    hysteresis: {
      type: 'string',
      valueName: 'FRAMES',
      default: String(DEFAULTS.smoothing.hysteresisFrames),
      description: 'add: frames a new label must lead before a segment switches',
    },
    'smooth-window': {
      type: 'string',
      valueName: 'FRAMES',
      default: String(DEFAULTS.smoothing.windowFrames),
      description: 'add: moving average of probabilities for segments (odd; 1 = off)',
    },
    attempts: { type: 'string', valueName: 'N', default: String(DEFAULTS.queue.attempts), description: 'add: tries per video before its job fails' },
    backoff: {
      type: 'string',
      valueName: 'MS',
      default: String(DEFAULTS.queue.backoffMs),
      description: 'add: wait before the first retry (doubles each time)',
    },
    json: { type: 'boolean', description: 'status: print the status as JSON' },
  },
  async run(ctx) {
    const { positionals, values, stdout, stderr } = ctx;
    const [action, ...inputs] = positionals;
    if (!(ACTIONS as readonly string[]).includes(action!)) {
      throw new FramewiseError(ErrorCodes.USAGE, `expected one of ${ACTIONS.join(', ')}, got "${action}"`);
    }
    if (action !== 'add' && inputs.length > 0) throw new FramewiseError(ErrorCodes.USAGE, `queue ${action} takes no inputs`);
    const { jobs, failures } = action === 'add' ? await describeJobs(inputs, values) : { jobs: [], failures: [] };
    for (const f of failures) stderr.write(`${f.name}: not queued: ${f.err.message} [${f.err.code}]\n`);
    const redis = await connectRedis(str(values, 'redis') ?? ctx.runtime.redisUrl, { connectTimeoutMs: num(values, 'connect-timeout', 100)! });
    const queue = openLabelQueue(redis, str(values, 'queue'));
    try {
      if (action === 'add') {
        const attempts = num(values, 'attempts', 1, 100)!;
        const backoffMs = num(values, 'backoff', 0, 24 * 3600_000)!;
        const r = await addLabelJobs(queue, jobs, labelJobOptions({ attempts, backoffMs }));
        for (const e of r.existing) stderr.write(`${e.name}: already queued as job ${e.id} (${e.state})\n`);
        stderr.write(`framewise queue: added ${r.added.length} job(s), ${r.existing.length} already in queue ${queue.name}\n`);
        for (const a of r.added) stdout.write(`${a.id}\t${a.name}\n`);
        if (failures.length > 0) {
          stderr.write(`framewise queue: ${failures.length} input(s) not queued\n`);
          return 1;
        }
      } else if (action === 'status') {
        const s = await queueStatus(queue);
        stdout.write(bool(values, 'json') ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      } else {
        const n = await retryFailed(queue);
        stderr.write(`framewise queue: ${n} failed job(s) back in queue ${queue.name}\n`);
      }
      return 0;
    } finally {
      await queue.close().catch(() => undefined);
      await closeRedis(redis);
    }
  },
};

/** Everything a worker needs, per input; the inputs are hashed here (the job id is their content). */
async function describeJobs(inputs: string[], values: OptionValues): Promise<{ jobs: LabelJobData[]; failures: { name: string; err: FramewiseError }[] }> {
  if (inputs.length === 0) throw new FramewiseError(ErrorCodes.USAGE, 'queue add needs <inputs...>');
  const model = str(values, 'model');
  if (!model) throw new FramewiseError(ErrorCodes.USAGE, '--model <bundle> is required');
  const bundle = bundleLocation(model);
  const output = outputLocation(str(values, 'out')!);
  const options = {
    formats: parseFormats(str(values, 'formats')),
    everyFrame: bool(values, 'every-frame'),
    smoothing: {
      minSegmentMs: num(values, 'min-segment-ms', 0)!,
      hysteresisFrames: num(values, 'hysteresis', 1)!,
      windowFrames: num(values, 'smooth-window', 1)!,
    },
  };
  const id = await bundleId(bundle);
  const items = await expandInputs(inputs);
  if (items.length === 0) throw new FramewiseError(ErrorCodes.USAGE, `no video found in ${inputs.join(' ')}`);
  const jobs: LabelJobData[] = [];
  const failures: { name: string; err: FramewiseError }[] = [];
  for (const item of items) {
    const input = inputLocation(item.source);
    try {
      const { sha256, bytes } = await identifyInput(input);
      jobs.push({ v: JOB_DATA_VERSION, input, name: item.name, output, bundle, bundleId: id, sha256, bytes, options });
    } catch (err) {
      // One missing file does not hold back the corpus; it is reported and the exit code says so.
      if (!(err instanceof FramewiseError)) throw err;
      failures.push({ name: item.name, err });
    }
  }
  return { jobs, failures };
}
