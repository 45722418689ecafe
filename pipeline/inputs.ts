// Turns the inputs a user types (files, folders, globs, URLs, '-') into a list of videos, each
// with a distinct output name. Folders are searched recursively for video extensions.
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, relative } from 'node:path';
import { glob, isDynamicPattern } from 'tinyglobby';
import { isVideoFile } from '../core/video-files.ts';
import { isUrl } from './probe.ts';

export interface InputItem {
  /** A path, a URL or '-' (stdin). */
  source: string;
  /** Output base name, unique within one run; may contain '/' for files found in folders. */
  name: string;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (isVideoFile(e.name)) out.push(p);
  }
  return out;
}

const stem = (p: string) => basename(p, extname(p));

/**
 * Expands inputs in order. A path that does not exist (or a pattern that matches nothing) is kept
 * as is, so that the run reports it as a failed input (with its own error) instead of silently
 * skipping it.
 */
export async function expandInputs(inputs: readonly string[]): Promise<InputItem[]> {
  const items: InputItem[] = [];
  for (const input of inputs) {
    if (input === '-') items.push({ source: '-', name: 'stdin' });
    else if (isUrl(input)) items.push({ source: input, name: stem(new URL(input).pathname) || 'stream' });
    else {
      // A path that exists is always that file or folder, even when its name has glob characters
      // ("clip (1).mp4", "take[2].mov"); only what does not exist is tried as a pattern.
      const st = await stat(input).catch(() => undefined);
      if (!st && isDynamicPattern(input)) {
        const matches = (await glob(input, { onlyFiles: true })).sort();
        // A pattern that matches nothing is reported as a failed input, like a missing file.
        if (matches.length === 0) items.push({ source: input, name: stem(input) });
        for (const p of matches) items.push({ source: p, name: stem(p) });
      } else if (st?.isDirectory()) {
        for (const p of await walk(input)) items.push({ source: p, name: relative(input, p).slice(0, -extname(p).length) });
      } else items.push({ source: input, name: stem(input) });
    }
  }
  // Two inputs with the same name would overwrite each other's outputs: number the later ones.
  const seen = new Map<string, number>();
  return items.map((it) => {
    const n = seen.get(it.name) ?? 0;
    seen.set(it.name, n + 1);
    return n === 0 ? it : { ...it, name: `${it.name}-${n + 1}` };
  });
}
