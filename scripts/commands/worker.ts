// `framewise worker --redis <url>`: takes label jobs from the queue until stopped. Run one per
// core on every machine that mounts the shared inputs, outputs and bundles. SIGTERM (or Ctrl-C)
// stops taking jobs and lets the current ones finish within --grace; a second signal releases
// them to the queue at once. Exit 0 after a clean stop.
import { DEFAULTS } from '../../core/defaults.ts';
import { startLabelWorker } from '../../queue/label-worker.ts';
import { modelOptions, num, str, type CommandSpec, modelRequest } from '../command.ts';
import { CONNECT_TIMEOUT_OPTION, QUEUE_OPTION, REDIS_OPTION } from './queue.ts';

export const command: CommandSpec = {
  name: 'worker',
  summary: 'Take label jobs from the queue (framewise queue add) and write their outputs, until SIGTERM.',
  options: {
    redis: REDIS_OPTION,
    queue: QUEUE_OPTION,
    'connect-timeout': CONNECT_TIMEOUT_OPTION,
    model: {
      type: 'string',
      short: 'm',
      valueName: 'DIR',
      description: 'bundle to load at start (optional: jobs name their bundle; this saves the first job the load and checks the weights are here)',
    },
    concurrency: {
      type: 'string',
      valueName: 'N',
      default: String(DEFAULTS.queue.concurrency),
      description: 'jobs at once in this process (the embedding engine already uses every core)',
    },
    grace: {
      type: 'string',
      valueName: 'MS',
      default: String(DEFAULTS.queue.graceMs),
      description: 'on SIGTERM, time the current jobs get to finish before they go back to the queue',
    },
    'lock-ms': {
      type: 'string',
      valueName: 'MS',
      default: String(DEFAULTS.queue.lockMs),
      description: "job lock; a dead worker's job is taken again after it expires",
    },
    'stalled-ms': { type: 'string', valueName: 'MS', default: String(DEFAULTS.queue.stalledMs), description: 'interval of the check for jobs of dead workers' },
    ...modelOptions,
  },
  async run(ctx) {
    const { values, stderr } = ctx;
    const log = (line: string) => stderr.write(`framewise worker: ${line}\n`);
    const concurrency = num(values, 'concurrency', 1, 64)!;
    const graceMs = num(values, 'grace', 0)!;
    const worker = await startLabelWorker({
      redis: str(values, 'redis') ?? ctx.runtime.redisUrl,
      queue: str(values, 'queue'),
      concurrency,
      ...modelRequest(ctx),
      lockMs: num(values, 'lock-ms', 1000)!,
      stalledMs: num(values, 'stalled-ms', 500)!,
      connectTimeoutMs: num(values, 'connect-timeout', 100)!,
      preload: str(values, 'model') ? [str(values, 'model')!] : [],
      log,
    });
    log(`${worker.name} waiting for jobs on ${str(values, 'queue')} (concurrency ${concurrency})`);
    await new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals === 1) {
          log(`${sig}: finishing current jobs (up to ${graceMs} ms), then exiting`);
          void worker.close(graceMs).then(resolve, (err: Error) => {
            log(`close failed: ${err.message}`);
            resolve();
          });
        } else {
          log(`${sig} again: releasing current jobs to the queue`);
          worker.release();
        }
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    log('stopped');
    // After a stop without Redis, BullMQ's own connections may still be retrying and would keep
    // the process alive; a worker that has stopped must exit (unref: not holding up a clean exit).
    setTimeout(() => process.exit(), 2000).unref();
    return 0;
  },
};
