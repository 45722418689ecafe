// Commands are declared as data: the same declaration drives parsing (node:util parseArgs),
// validation and `--help`, so help text and behaviour cannot drift apart.
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { parseBackendRequest, type BackendRequest } from '../models/backend.ts';
import { parseEngineRequest, parseWorkers, type EngineRequest } from '../models/engine-choice.ts';
import type { RuntimeConfig } from './runtime-config.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help; applied when the option is absent. */
  default?: string | boolean;
  /** Placeholder shown in --help, e.g. 'DIR'. */
  valueName?: string;
  description: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandContext {
  positionals: string[];
  values: OptionValues;
  /** Where human-readable progress goes; stdout is kept for data (`--out -`). */
  stderr: NodeJS.WritableStream;
  stdout: NodeJS.WritableStream;
  /** The environment, read once at start (scripts/runtime-config.ts). */
  runtime: Readonly<RuntimeConfig>;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments as shown in usage, e.g. '<video>' or '<inputs...>'. */
  args?: string;
  /** Minimum number of positionals (usage error below it). */
  minArgs?: number;
  options: Record<string, OptionSpec>;
  /** Returns the process exit code: 0 ok, 1 an input failed, 2 usage. */
  run(ctx: CommandContext): Promise<number>;
}

/** Options every model-facing command takes. */
export const modelOptions: Record<string, OptionSpec> = {
  backend: {
    type: 'string',
    valueName: 'NAME',
    description: 'tfjs backend: auto, node-gpu, node, wasm, cpu (default: env FRAMEWISE_BACKEND, else auto)',
  },
  'models-dir': {
    type: 'string',
    valueName: 'DIR',
    description: 'folder holding <embedder-id>/model.json (default: env FRAMEWISE_MODELS, else the cache)',
  },
  engine: {
    type: 'string',
    valueName: 'NAME',
    description: 'embedding engine: auto (fastest available), tfjs, onnx (default: env FRAMEWISE_ENGINE, else auto)',
  },
  workers: {
    type: 'string',
    valueName: 'N',
    description: 'embedding worker threads with a model each, for ONNX Runtime and tfjs wasm (default: env FRAMEWISE_WORKERS, else the number of cores)',
  },
};

/** An `--fps` value: a number in the one frame-rate range, or 'source' (null: the video's own rate). */
export function fpsValue(values: OptionValues, name = 'fps'): number | null | undefined {
  if (str(values, name) === 'source') return null;
  return num(values, name, DEFAULTS.fpsRange.min, DEFAULTS.fpsRange.max);
}

/** The `--cache-dir` option of commands that cache weights, exports or embeddings. */
export const cacheDirOption: OptionSpec = {
  type: 'string',
  valueName: 'DIR',
  description: 'cache for weights, ONNX exports and embeddings (default: env FRAMEWISE_CACHE, else ~/.cache/framewise)',
};

/** Where and how a command runs its models: each from its option, else from the environment read at start. */
export interface ModelRequest {
  backend: BackendRequest;
  engine: EngineRequest;
  workers: number;
  modelsDir: string | undefined;
  cacheDir: string;
}

export function modelRequest(ctx: Pick<CommandContext, 'values' | 'runtime'>): ModelRequest {
  const { values, runtime } = ctx;
  const given = (name: string) => str(values, name);
  const usage = <T>(name: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new FramewiseError(ErrorCodes.USAGE, `--${name}: ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    backend: given('backend') !== undefined ? usage('backend', () => parseBackendRequest(given('backend'))) : runtime.backend,
    engine: given('engine') !== undefined ? usage('engine', () => parseEngineRequest(given('engine'))) : runtime.engine,
    workers: given('workers') !== undefined ? usage('workers', () => parseWorkers(given('workers'))) : runtime.workers,
    modelsDir: given('models-dir') ?? runtime.modelsDir,
    cacheDir: given('cache-dir') ?? runtime.cacheDir,
  };
}

export function parseCommand(spec: CommandSpec, argv: string[]): { positionals: string[]; values: OptionValues } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(spec.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new FramewiseError(ErrorCodes.USAGE, (err as Error).message, { cause: err });
  }
  const values = { ...parsed.values } as OptionValues;
  for (const [name, o] of Object.entries(spec.options)) {
    if (values[name] === undefined && o.default !== undefined) values[name] = o.default;
  }
  if (!values.help && parsed.positionals.length < (spec.minArgs ?? 0)) {
    throw new FramewiseError(ErrorCodes.USAGE, `framewise ${spec.name} needs ${spec.args}`);
  }
  return { positionals: parsed.positionals, values };
}

export function renderHelp(spec: CommandSpec): string {
  const lines = [`Usage: framewise ${spec.name}${spec.args ? ' ' + spec.args : ''} [options]`, '', spec.summary, '', 'Options:'];
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    const def = o.default !== undefined && o.default !== false ? ` (default: ${o.default})` : '';
    return [flag, o.description + def] as const;
  });
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  for (const [flag, text] of rows) lines.push(`  ${flag.padEnd(width)}${text}`);
  return lines.join('\n') + '\n';
}

/** Typed accessors: options arrive as strings; numbers are range-checked here, once. */
export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function num(values: OptionValues, name: string, min = -Infinity, max = Infinity): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new FramewiseError(ErrorCodes.USAGE, `--${name} must be a number in [${min}, ${max}], got "${v}"`);
  }
  return n;
}

export function bool(values: OptionValues, name: string): boolean {
  return values[name] === true;
}
