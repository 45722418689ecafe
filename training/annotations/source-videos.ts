// The videos an annotation export points at: found by file name in the dataset root or its
// videos/ folder (tools keep only a name or a URL of their own), and probed for the frame rate and
// the exact frame count every tool's frame numbers are checked against.
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { isVideoFile } from '../../core/video-files.ts';
import { probe, sourceFrameTimes } from '../../pipeline/probe.ts';
import type { SourceVideo } from './frame-labels.ts';

export class SourceVideos {
  private readonly byFile = new Map<string, string>();
  private readonly byStem = new Map<string, string[]>();
  private readonly probed = new Map<string, Promise<SourceVideo>>();

  private constructor(readonly root: string) {}

  static async scan(root: string): Promise<SourceVideos> {
    const s = new SourceVideos(root);
    for (const dir of [root, join(root, 'videos')]) {
      const isDir = await stat(dir).then(
        (st) => st.isDirectory(),
        () => false,
      );
      if (!isDir) continue;
      for (const f of (await readdir(dir)).sort()) {
        if (!isVideoFile(f)) continue;
        const path = join(dir, f);
        if (!s.byFile.has(f)) s.byFile.set(f, path);
        const stem = basename(f, extname(f));
        s.byStem.set(stem, [...(s.byStem.get(stem) ?? []), path]);
      }
    }
    return s;
  }

  /** The local video a tool's reference (a file name, a path, a URL) names, or undefined. */
  find(ref: string): string | undefined {
    for (const name of candidateNames(ref)) {
      const hit = this.byFile.get(name);
      if (hit) return hit;
    }
    return undefined;
  }

  /** A video with this name and any extension (the annotation file's own name, e.g. clip.eaf). */
  findStem(stem: string): string | undefined {
    const hits = this.byStem.get(stem) ?? [];
    return hits.length === 1 ? hits[0] : undefined;
  }

  describe(): string {
    return `${this.root} or ${join(this.root, 'videos')}`;
  }

  info(path: string): Promise<SourceVideo> {
    let p = this.probed.get(path);
    if (!p) {
      p = (async () => {
        const [info, times] = await Promise.all([probe(path), sourceFrameTimes(path)]);
        if (!(info.fps > 0))
          throw new FramewiseError(ErrorCodes.DATASET_INVALID, `${path}: the container gives no frame rate, so annotation frame numbers cannot be placed`);
        return { path, fps: info.fps, frameCount: times.length };
      })();
      this.probed.set(path, p);
    }
    return p;
  }
}

/** File names a reference may mean: its basename (URL-decoded, without query), the `d=` path of
 * Label Studio's local-files URLs, and the name without Label Studio's upload prefix (8 hex + '-'). */
export function candidateNames(ref: string): string[] {
  const out: string[] = [];
  const add = (s: string | undefined | null) => {
    if (!s) return;
    let name = s.replace(/\\/g, '/').split('/').pop() ?? '';
    try {
      name = decodeURIComponent(name);
    } catch {
      // A literal '%' in a file name: keep it as it is.
    }
    if (name && !out.includes(name)) out.push(name);
    const stripped = name.replace(/^[0-9a-f]{8}-/, '');
    if (stripped !== name && !out.includes(stripped)) out.push(stripped);
  };
  const [path, query] = ref.split(/[?#]/, 2);
  if (query) add(new URLSearchParams(query).get('d'));
  add(path);
  return out;
}
