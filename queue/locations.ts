// The one module that knows where a queued job's input, model bundle and outputs live. Today a
// location is an absolute path on a filesystem every worker mounts at the same place (or, for an
// input, an http(s)/rtsp URL every worker can reach); object storage would slot in here (a
// `s3://` location: download the input, upload the staged files in commit()) without the queue
// or the worker changing.
//
// Outputs are staged: labelVideo writes into a hidden folder next to the final files
// (`<out>/.framewise-tmp/<job>.<host>.<pid>.<rand>/`, the same filesystem, so a rename is atomic),
// and commit() renames each file into place only after the whole video is labeled. A reader never
// sees a half-written file under a final name, and a worker killed mid-job leaves only its stage
// folder, which the next attempt of the same job removes.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { hashFile } from '../models/embedding-file.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { isUrl } from '../pipeline/probe.ts';
import { FORMAT_SUFFIX, OUTPUT_FORMATS, type OutputFormat } from '../pipeline/sinks/index.ts';

/** An absolute path on the shared mount, or (inputs only) a URL. */
export type Location = string;

/** Hidden folder under an output folder holding the stages of jobs in progress. */
export const STAGING_DIR = '.framewise-tmp';

const OBJECT_STORE = /^[a-z][a-z0-9+.-]*:\/\//i;

function notYet(what: string, value: string): FramewiseError {
  return new FramewiseError(ErrorCodes.USAGE, `${what} "${value}" is not supported yet: use a path on a filesystem every worker mounts at the same place`);
}

/** Where a worker finds an input: a URL as is, a path made absolute (the shared mount). */
export function inputLocation(source: string, cwd = process.cwd()): Location {
  if (source === '-') throw new FramewiseError(ErrorCodes.USAGE, 'stdin cannot be queued: a worker on another machine cannot read it');
  if (isUrl(source)) return source;
  if (OBJECT_STORE.test(source)) throw notYet('input', source);
  return resolve(cwd, source);
}

export function bundleLocation(dir: string, cwd = process.cwd()): Location {
  if (OBJECT_STORE.test(dir)) throw notYet('model bundle', dir);
  return resolve(cwd, dir);
}

export function outputLocation(out: string, cwd = process.cwd()): Location {
  if (out === '-') throw new FramewiseError(ErrorCodes.USAGE, '--out - (stdout) cannot be used with the queue: workers write files');
  if (OBJECT_STORE.test(out)) throw notYet('output', out);
  return resolve(cwd, out);
}

/** A location a job may carry (validation of job data from Redis). */
export function isLocation(value: unknown): value is Location {
  return typeof value === 'string' && value.length > 0 && (isAbsolute(value) || isUrl(value));
}

/** What labelVideo opens for an input location. */
export function localInput(location: Location): string {
  return location;
}

/** The folder loadBundle opens for a bundle location. */
export function localBundle(location: Location): string {
  return location;
}

/**
 * The input's identity for the job id: sha256 of a file's bytes (so a renamed or copied video is
 * the same job), of the URL text for a URL (its bytes are not at hand without downloading).
 */
export async function identifyInput(location: Location): Promise<{ sha256: string; bytes: number }> {
  if (isUrl(location)) return { sha256: createHash('sha256').update(location).digest('hex'), bytes: 0 };
  const st = await stat(location).catch(() => undefined);
  if (!st) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `input ${location} does not exist`);
  if (!st.isFile()) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `input ${location} is not a file`);
  return hashFile(location);
}

export interface StagedOutputs {
  /** Folder to pass to labelVideo as outDir (with the job's own name). */
  readonly dir: string;
  /** Moves the finished files into the output folder, segments last; returns the final paths. */
  commit(files: Partial<Record<OutputFormat, string>>): Promise<string[]>;
  /** Drops the stage (failed or released job). Never rejects. */
  discard(): Promise<void>;
}

/** Opens a fresh stage for one attempt of a job, removing stages left by earlier attempts. */
export async function stageOutputs(output: Location, name: string, jobId: string): Promise<StagedOutputs> {
  const root = join(output, STAGING_DIR);
  const dir = join(root, `${jobId}.${hostname()}.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    // Another worker's discard may remove the empty root between our mkdir and readdir: retry.
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(root, { recursive: true });
        // A stage of the same job is from an attempt that died (SIGKILL, a lost machine): BullMQ gave
        // the job to this worker only after that attempt's lock expired.
        for (const entry of await readdir(root)) {
          if (entry.startsWith(`${jobId}.`)) await rm(join(root, entry), { recursive: true, force: true });
        }
        await mkdir(dir);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 4) throw err;
      }
    }
  } catch (err) {
    throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot create a staging folder under ${root}: ${(err as Error).message}`, { cause: err });
  }
  const discard = async () => {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    await rmdir(root).catch(() => undefined); // only when empty: other jobs may be staging
  };
  return {
    dir,
    discard,
    async commit(files) {
      const done: string[] = [];
      // The segments file is written last by `label` too: its presence means the rest is there.
      const order = [...OUTPUT_FORMATS.filter((f) => f !== 'activitynet'), 'activitynet' as const];
      try {
        for (const format of order) {
          if (!files[format]) continue;
          const final = join(output, name + FORMAT_SUFFIX[format]);
          await mkdir(dirname(final), { recursive: true });
          await rename(join(dir, name + FORMAT_SUFFIX[format]), final);
          done.push(final);
        }
      } catch (err) {
        throw new FramewiseError(ErrorCodes.OUTPUT_FAILED, `cannot move outputs of ${name} into ${output}: ${(err as Error).message}`, { cause: err });
      } finally {
        await discard();
      }
      return done;
    },
  };
}
