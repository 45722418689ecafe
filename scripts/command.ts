// Commands are declared as data: the same declaration drives parsing (node:util parseArgs),
// validation and `--help`, so help text and behaviour cannot drift apart.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { parseBackendRequest, type BackendRequest } from '../models/backend.ts';
import { parseEngineRequest, parseWorkers, type EngineRequest } from '../models/engine-choice.ts';
import type { RuntimeConfig } from './runtime-config.ts';
import { parsePrecisionRequest, type PrecisionRequest } from '../models/precision.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help; applied when the option is absent. */
  default?: string | boolean;
  /** Shown in --help instead of `default` when the value is worked out, e.g. '2 (the cores here)'. */
  defaultHelp?: string;
  /** Environment variable that sets the default, shown in --help. */
  env?: string;
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
    defaultHelp: 'auto',
    env: 'FRAMEWISE_BACKEND',
    description: 'tfjs backend: auto, node-gpu, node, wasm, cpu',
  },
  'models-dir': {
    type: 'string',
    valueName: 'DIR',
    env: 'FRAMEWISE_MODELS',
    description: 'folder holding <embedder-id>/model.json; unset, the cache, then a download',
  },
  engine: {
    type: 'string',
    valueName: 'NAME',
    defaultHelp: 'auto',
    env: 'FRAMEWISE_ENGINE',
    description: 'embedding engine: auto (fastest available), tfjs, onnx',
  },
  precision: {
    type: 'string',
    valueName: 'P',
    defaultHelp: 'auto',
    env: 'FRAMEWISE_PRECISION',
    description:
      'embedder precision: auto (int8 where its export is verified and measured faster on this CPU), fp32, or int8 for the ONNX engine, exported and calibrated on first use',
  },
  calibrate: {
    type: 'string',
    valueName: 'DIR',
    description: "photos/videos to calibrate the int8 export on (default: the run's own inputs when no int8 export exists yet)",
  },
  workers: {
    type: 'string',
    valueName: 'N',
    defaultHelp: `${availableParallelism()}, the cores here`,
    env: 'FRAMEWISE_WORKERS',
    description: 'embedding worker threads with a model each, for ONNX Runtime and tfjs wasm',
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
  defaultHelp: '$XDG_CACHE_HOME/framewise, else ~/.cache/framewise',
  env: 'FRAMEWISE_CACHE',
  description: 'cache for weights, ONNX exports and embeddings',
};

/** Where and how a command runs its models: each from its option, else from the environment read at start. */
export interface ModelRequest {
  backend: BackendRequest;
  engine: EngineRequest;
  precision: PrecisionRequest;
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
    precision: given('precision') !== undefined ? usage('precision', () => parsePrecisionRequest(given('precision'))) : runtime.precision,
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
    throw new FramewiseError(ErrorCodes.USAGE, `missing argument: ${spec.args}`);
  }
  return { positionals: parsed.positionals, values };
}

export function renderHelp(spec: CommandSpec): string {
  const lines = [`Usage: framewise ${spec.name}${spec.args ? ' ' + spec.args : ''} [options]`, '', spec.summary, '', 'Options:'];
  const rows = Object.entries(spec.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    // One parenthesis: the default (as applied, or as worked out) and the variable that sets it.
    const shown = o.defaultHelp ?? (o.default !== undefined && o.default !== false ? String(o.default) : undefined);
    const notes = [shown !== undefined ? `default: ${shown}` : '', o.env ? `env ${o.env}` : ''].filter(Boolean);
    const def = notes.length > 0 ? ` (${notes.join('; ')})` : '';
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

/**
 * `--precision` and `--calibrate` as engine options; `inputs` are the run's own inputs (videos,
 * a dataset folder), calibrated on when int8 is asked for and no int8 export exists yet.
 */
export function precisionOptions(
  ctx: Pick<CommandContext, 'values' | 'runtime'>,
  inputs: readonly string[] = [],
): { precision: PrecisionRequest; calibrate?: string[]; calibrationInputs: string[] } {
  const calibrate = str(ctx.values, 'calibrate');
  return { precision: modelRequest(ctx).precision, ...(calibrate ? { calibrate: [calibrate] } : {}), calibrationInputs: inputs.filter((i) => i !== '-') };
}
