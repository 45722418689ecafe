// Safe access to the media folder (`--media DIR`): a client names a file by its path relative to
// the folder, and nothing outside the folder may be read. Refused with E_FORBIDDEN: `..`
// segments, absolute paths that are not inside the folder, NUL bytes, and any path whose real
// location (symlinks resolved with realpath) leaves the folder. Missing files are E_INPUT_NOT_FOUND.
import { realpathSync, statSync, readdirSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { isVideoFile } from '../core/video-files.ts';

/** Extensions offered in the media listing (any ffmpeg-readable file can still be labeled). */

export interface MediaRoot {
  /** realpath of the folder. */
  readonly root: string;
  /** The real path of a requested file inside the folder, or an E_FORBIDDEN / E_INPUT_NOT_FOUND error. */
  resolve(requested: string): string;
  /** Video files under the folder (relative, '/'-separated), up to `max`, depth-first, sorted. */
  list(max?: number): string[];
}

export function mediaRoot(dir: string): MediaRoot {
  let root: string;
  try {
    root = realpathSync(dir);
    if (!statSync(root).isDirectory()) throw new Error('not a directory');
  } catch (err) {
    throw new FramewiseError(ErrorCodes.USAGE, `--media ${dir} is not a readable folder`, { cause: err });
  }
  return {
    root,
    resolve: (requested) => resolveInside(root, requested),
    list: (max = 500) => listVideos(root, max),
  };
}

function forbidden(requested: string, why: string): FramewiseError {
  return new FramewiseError(ErrorCodes.FORBIDDEN, `${JSON.stringify(requested.slice(0, 200))} is not served: ${why}`);
}

export function resolveInside(root: string, requested: string): string {
  if (typeof requested !== 'string' || requested.length === 0) throw forbidden(String(requested), 'empty path');
  if (requested.includes('\0')) throw forbidden(requested, 'NUL byte in path');
  const parts = requested.split(/[\\/]+/);
  if (parts.includes('..')) throw forbidden(requested, '".." is not allowed');
  const candidate = isAbsolute(requested) ? resolve(requested) : resolve(root, requested);
  if (!inside(root, candidate)) throw forbidden(requested, 'outside the media folder');
  let real: string;
  try {
    real = realpathSync(candidate);
  } catch (err) {
    throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no such file in the media folder: ${requested}`, { cause: err });
  }
  // A symlink inside the folder may point anywhere: the real location decides.
  if (!inside(root, real)) throw forbidden(requested, 'it links outside the media folder');
  if (!statSync(real).isFile()) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `not a file: ${requested}`);
  return real;
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel !== '' && !isAbsolute(rel) && !rel.split(sep).includes('..');
}

function listVideos(root: string, max: number): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 6 || out.length >= max) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
    } catch {
      return;
    }
    for (const e of entries) {
      if (out.length >= max || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p, depth + 1);
      else if (isVideoFile(e.name)) {
        try {
          resolveInside(root, p); // skips symlinks that leave the folder
          out.push(relative(root, p).split(sep).join('/'));
        } catch {
          // not listed
        }
      }
    }
  };
  walk(root, 0);
  return out;
}
