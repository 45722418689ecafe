// `framewise <command>`: dispatch and help. Each command lives in scripts/commands/<name>.ts and
// is imported only when used, so `framewise --help` does not load tfjs.
import { readFileSync } from 'node:fs';
import { FramewiseError, ErrorCodes } from '../core/errors.ts';
import { parseCommand, renderHelp, type CommandSpec } from './command.ts';
import { readRuntimeConfig, type RuntimeConfig } from './runtime-config.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: CommandSpec }> }> = {
  // one line per command, kept in the order a user meets them
  demo: { summary: 'generate a small labeled dataset, train, label a held-out video, print metrics', load: () => import('./commands/demo.ts') },
  train: {
    summary: 'train the recurrent head on labeled clips; --check, --overfit, --lr-find, --search for tuning',
    load: () => import('./commands/train.ts'),
  },
  eval: { summary: 'score a bundle on labeled videos: accuracy, macro F1, Edit, F1@k, mAP, confusion (--tta)', load: () => import('./commands/eval.ts') },
  label: { summary: 'label every frame of videos with a trained bundle (JSONL, CSV, WebVTT, ActivityNet, overlay)', load: () => import('./commands/label.ts') },
  queue: { summary: 'queue videos for workers on many machines (BullMQ on Redis): add, status, retry-failed', load: () => import('./commands/queue.ts') },
  worker: { summary: 'take label jobs from the queue and write their outputs, until SIGTERM', load: () => import('./commands/worker.ts') },
  embed: { summary: 'embed every frame of a video with a MobileNet into an embedding file (for training)', load: () => import('./commands/embed.ts') },
  serve: { summary: 'serve the browser client: live webcam labels and labeled video playback over WebSockets', load: () => import('./commands/serve.ts') },
  doctor: { summary: 'check backend, ffmpeg and local model weights; print the fix for anything missing', load: () => import('./commands/doctor.ts') },
  models: { summary: 'list embedders and their weights; export-onnx <id> for the native engine', load: () => import('./commands/models.ts') },
  bench: { summary: 'measure decode, embed (wasm, pool, ONNX) and end-to-end label throughput; --rss for memory', load: () => import('./commands/bench.ts') },
};

function topHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2;
  const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}${c.summary}`);
  return [
    'Usage: framewise <command> [options]',
    '',
    'Commands:',
    ...rows,
    '',
    'framewise <command> --help for its options; framewise --version for the version.',
    '',
  ].join('\n');
}

/** The version of this checkout or installed package, from its package.json. */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** True when an error (or one of its causes) is a write to a pipe whose reader has gone. */
export function isClosedPipe(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return true;
  }
  return false;
}

export async function main(argv: string[], io = { stdout: process.stdout, stderr: process.stderr }, runtime?: Readonly<RuntimeConfig>): Promise<number> {
  // `framewise ... --out - | head -3`: when the reader stops, stop quietly with success, as Unix
  // tools do. The error event arrives on stdout itself, outside any command's promise.
  if (io.stdout === process.stdout) {
    process.stdout.on('error', (err) => {
      if (isClosedPipe(err)) process.exit(0);
      throw err;
    });
  }
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(topHelp());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    io.stdout.write(`framewise ${version()}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    io.stderr.write(`framewise: unknown command "${name}"\n\n${topHelp()}`);
    return 2;
  }
  let spec: CommandSpec;
  try {
    spec = (await entry.load()).command;
  } catch (err) {
    io.stderr.write(`framewise ${name}: not available in this build (${(err as Error).message})\n`);
    return 1;
  }
  try {
    const { positionals, values } = parseCommand(spec, rest);
    if (values.help) {
      io.stdout.write(renderHelp(spec));
      return 0;
    }
    return await spec.run({ positionals, values, stdout: io.stdout, stderr: io.stderr, runtime: runtime ?? readRuntimeConfig() });
  } catch (err) {
    if (isClosedPipe(err)) return 0;
    if (err instanceof FramewiseError) {
      io.stderr.write(`framewise ${name}: ${err.message} [${err.code}]\n`);
      if (err.code === ErrorCodes.USAGE) io.stderr.write(`run 'framewise ${name} --help' for the options\n`);
      return err.code === ErrorCodes.USAGE ? 2 : 1;
    }
    io.stderr.write(`framewise ${name}: unexpected error: ${(err as Error)?.stack ?? err}\n`);
    return 1;
  }
}
