// The environment, read once: every FRAMEWISE_* variable the CLI honours, resolved at start into
// one frozen object that commands hand down as plain options. Code below scripts/ reads no
// environment variable, except the lookup of the ffmpeg binaries.
import { join } from 'node:path';
import { DEFAULTS } from '../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { parseBackendRequest, type BackendRequest } from '../models/backend.ts';
import { parseEngineRequest, parseWorkers, type EngineRequest } from '../models/engine-choice.ts';
import { parsePrecisionRequest, type PrecisionRequest } from '../models/precision.ts';

export interface RuntimeConfig {
  /** FRAMEWISE_BACKEND: the tfjs backend; default 'auto'. */
  backend: BackendRequest;
  /** FRAMEWISE_ENGINE: the embedding engine; default 'auto'. */
  engine: EngineRequest;
  /** FRAMEWISE_PRECISION: the embedder's precision; default 'auto'. */
  precision: PrecisionRequest;
  /** FRAMEWISE_WORKERS: embedding worker threads; default the number of cores. */
  workers: number;
  /** FRAMEWISE_MODELS: a folder holding <embedder-id>/model.json; unset means the cache, then a download. */
  modelsDir: string | undefined;
  /** FRAMEWISE_CACHE, else $XDG_CACHE_HOME/framewise, else ~/.cache/framewise. */
  cacheDir: string;
  /** FRAMEWISE_REDIS: the queue's Redis; default redis://127.0.0.1:6379. */
  redisUrl: string;
  /** FRAMEWISE_TOKEN: the token `serve` requires; unset, serve makes one where it needs one. */
  token: string | undefined;
}

/** Reads the environment; a malformed variable is a usage error that names it. */
export function readRuntimeConfig(env: NodeJS.ProcessEnv = process.env): Readonly<RuntimeConfig> {
  const set = (name: string) => (env[name] ? env[name] : undefined);
  const parse = <T>(name: string, f: (v: string | undefined) => T): T => {
    try {
      return f(set(name));
    } catch (err) {
      throw new FramewiseError(ErrorCodes.USAGE, `${name}: ${(err as Error).message}`, { cause: err });
    }
  };
  return Object.freeze({
    backend: parse('FRAMEWISE_BACKEND', parseBackendRequest),
    engine: parse('FRAMEWISE_ENGINE', parseEngineRequest),
    precision: parse('FRAMEWISE_PRECISION', parsePrecisionRequest),
    workers: parse('FRAMEWISE_WORKERS', parseWorkers),
    modelsDir: set('FRAMEWISE_MODELS'),
    cacheDir: set('FRAMEWISE_CACHE') ?? (set('XDG_CACHE_HOME') ? join(env.XDG_CACHE_HOME!, 'framewise') : DEFAULTS.cacheDir),
    redisUrl: set('FRAMEWISE_REDIS') ?? 'redis://127.0.0.1:6379',
    token: set('FRAMEWISE_TOKEN'),
  });
}
