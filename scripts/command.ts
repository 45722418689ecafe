// Commands are declared as data: the same declaration drives parsing (node:util parseArgs),
// validation and `--help`, so help text and behaviour cannot drift apart.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { parsePrecisionRequest, type PrecisionRequest } from '../models/precision.ts';

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
    description: 'folder holding <embedder-id>/model.json (env FRAMEWISE_MODELS)',
  },
  engine: {
    type: 'string',
    valueName: 'NAME',
    default: process.env.FRAMEWISE_ENGINE || 'auto',
    description: 'embedding engine: auto (fastest available), tfjs, onnx (env FRAMEWISE_ENGINE)',
  },
  precision: {
    type: 'string',
    valueName: 'P',
    default: process.env.FRAMEWISE_PRECISION || 'auto',
    description: 'embedder precision: auto (int8 where its export is verified and measured faster on this CPU), fp32, int8 (ONNX engine; exported and calibrated on first use) (env FRAMEWISE_PRECISION)',
  },
  calibrate: {
    type: 'string',
    valueName: 'DIR',
    description: 'photos/videos to calibrate the int8 export on (default: the run\'s own inputs when no int8 export exists yet)',
  },
  workers: {
    type: 'string',
    valueName: 'N',
    default: process.env.FRAMEWISE_WORKERS || String(availableParallelism()),
    description: 'embedding worker threads with a model each, for ONNX Runtime and tfjs wasm (env FRAMEWISE_WORKERS; default: cores)',
  },
};

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

/**
 * `--precision` and `--calibrate` as engine options; `inputs` are the run's own inputs (videos,
 * a dataset folder), calibrated on when int8 is asked for and no int8 export exists yet.
 */
export function precisionOptions(values: OptionValues, inputs: readonly string[] = []): { precision: PrecisionRequest; calibrate?: string[]; calibrationInputs: string[] } {
  const calibrate = str(values, 'calibrate');
  return { precision: parsePrecisionRequest(str(values, 'precision')), ...(calibrate ? { calibrate: [calibrate] } : {}), calibrationInputs: inputs.filter((i) => i !== '-') };
}
