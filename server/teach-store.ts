// What the Teach view keeps on disk, in the folder the user names (--teach-dir), across restarts:
//   <dir>/data/<activity>/<clip>.webm    the recorded clips: a folder-per-class dataset, usable as
//                                        it is with `framewise train --data <dir>/data`
//   <dir>/bundles/<run>/                 each trained bundle (model.json, weights.bin,
//                                        framewise.json, report/)
//   <dir>/teach.json                     the activity names in the order given (a name may have
//                                        no clip yet) and the bundle in use
// Uploads are bounded: TEACH_LIMITS caps names, activities, clips per activity and bytes per clip.
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BUNDLE_FILES, type BundleMeta } from '../models/recurrent/bundle.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';

export const TEACH_LIMITS = Object.freeze({
  /** Activities. */
  maxClasses: 12,
  /** Clips per activity. */
  maxClipsPerClass: 40,
  /** Bytes per uploaded clip (a 3 s webcam recording is a few hundred kB). */
  maxClipBytes: 16 * 1024 * 1024,
});

/** Activity names become folder names: letters, digits, space, dot, dash, underscore; 1-40 characters. */
const NAME = /^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,39}$/u;
const CLIP = /^clip-[a-z0-9]+\.(webm|mp4)$/;
const RUN = /^run-[a-z0-9]+$/;

export interface ClipInfo {
  id: string;
  bytes: number;
  /** URL of the clip (GET). */
  url: string;
}

export interface TeachClass {
  name: string;
  clips: ClipInfo[];
}

export interface BundleSummary {
  id: string;
  createdAt: string;
  classes: string[];
  embedderId: string;
  /** Frame accuracy of the trained head where the trainer measured it. */
  accuracy: number | null;
  current: boolean;
  downloadUrl: string;
}

interface State {
  classes: string[];
  current: string | null;
}

export class TeachStore {
  readonly dataDir: string;
  readonly bundlesDir: string;
  private readonly statePath: string;
  private state: State;

  constructor(readonly root: string) {
    this.dataDir = join(root, 'data');
    this.bundlesDir = join(root, 'bundles');
    this.statePath = join(root, 'teach.json');
    mkdirSync(this.dataDir, { recursive: true });
    mkdirSync(this.bundlesDir, { recursive: true });
    this.state = this.readState();
  }

  classes(): TeachClass[] {
    return this.state.classes.map((name) => ({ name, clips: this.clips(name) }));
  }

  addClass(raw: unknown): TeachClass[] {
    const name = checkName(raw);
    if (this.state.classes.includes(name)) throw new FramewiseError(ErrorCodes.USAGE, `there is already an activity "${name}"`);
    if (this.state.classes.length >= TEACH_LIMITS.maxClasses) throw new FramewiseError(ErrorCodes.USAGE, `at most ${TEACH_LIMITS.maxClasses} activities`);
    this.state.classes.push(name);
    this.writeState();
    return this.classes();
  }

  removeClass(raw: string): TeachClass[] {
    const name = this.known(raw);
    rmSync(join(this.dataDir, name), { recursive: true, force: true });
    this.state.classes = this.state.classes.filter((c) => c !== name);
    this.writeState();
    return this.classes();
  }

  /** Stores one recording (streamed, size-capped; a partial file never enters the dataset). */
  async addClip(rawClass: string, body: Readable, ext: 'webm' | 'mp4'): Promise<ClipInfo> {
    const name = this.known(rawClass);
    if (this.clips(name).length >= TEACH_LIMITS.maxClipsPerClass) {
      throw new FramewiseError(ErrorCodes.USAGE, `"${name}" has ${TEACH_LIMITS.maxClipsPerClass} clips, the most it can hold: delete one first`);
    }
    const dir = join(this.dataDir, name);
    mkdirSync(dir, { recursive: true });
    const id = `clip-${Date.now().toString(36)}${randomBytes(3).toString('hex')}.${ext}`;
    // A dot name: the dataset loader skips it until the rename.
    const tmp = join(dir, `.${id}.part`);
    let bytes = 0;
    const cap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        if (bytes > TEACH_LIMITS.maxClipBytes)
          done(new FramewiseError(ErrorCodes.USAGE, `a clip may have at most ${TEACH_LIMITS.maxClipBytes / 1024 / 1024} MiB`));
        else done(null, chunk);
      },
    });
    try {
      await pipeline(body, cap, createWriteStream(tmp));
      if (bytes === 0) throw new FramewiseError(ErrorCodes.USAGE, 'the clip is empty');
      renameSync(tmp, join(dir, id));
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    return { id, bytes, url: clipUrl(name, id) };
  }

  removeClip(rawClass: string, id: string): void {
    const path = this.clipPath(rawClass, id);
    rmSync(path, { force: true });
  }

  clipPath(rawClass: string, id: string): string {
    const name = this.known(rawClass);
    const path = join(this.dataDir, name, id);
    if (!CLIP.test(id) || !existsSync(path)) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no clip ${id} in "${name}"`);
    return path;
  }

  /** Activities with at least one clip: what a training sees. */
  trainableClasses(): string[] {
    return this.state.classes.filter((c) => this.clips(c).length > 0);
  }

  newRun(): { id: string; dir: string } {
    const id = `run-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
    return { id, dir: join(this.bundlesDir, id) };
  }

  bundleDir(id: string): string {
    const dir = join(this.bundlesDir, id);
    if (!RUN.test(id) || !existsSync(join(dir, BUNDLE_FILES.meta))) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no trained bundle ${id}`);
    return dir;
  }

  bundles(): BundleSummary[] {
    const out: BundleSummary[] = [];
    for (const id of readdirSync(this.bundlesDir)
      .filter((f) => RUN.test(f))
      .sort()) {
      try {
        const meta = JSON.parse(readFileSync(join(this.bundlesDir, id, BUNDLE_FILES.meta), 'utf8')) as BundleMeta;
        const acc = (meta.metrics as { accuracy?: unknown } | undefined)?.accuracy;
        out.push({
          id,
          createdAt: meta.createdAt,
          classes: meta.classes,
          embedderId: meta.embedderId,
          accuracy: typeof acc === 'number' ? acc : null,
          current: id === this.state.current,
          downloadUrl: `/api/teach/bundles/${id}.tar`,
        });
      } catch {
        // An unfinished or failed run: not a bundle.
      }
    }
    return out.reverse();
  }

  get current(): string | null {
    return this.state.current;
  }

  set current(id: string | null) {
    this.state.current = id;
    this.writeState();
  }

  private clips(name: string): ClipInfo[] {
    const dir = join(this.dataDir, name);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => CLIP.test(f))
      .sort()
      .map((id) => ({ id, bytes: statSync(join(dir, id)).size, url: clipUrl(name, id) }));
  }

  private known(raw: string): string {
    if (!this.state.classes.includes(raw)) throw new FramewiseError(ErrorCodes.INPUT_NOT_FOUND, `no activity "${raw}"`);
    return raw;
  }

  private readState(): State {
    try {
      const s = JSON.parse(readFileSync(this.statePath, 'utf8')) as Partial<State>;
      const classes = Array.isArray(s.classes) ? s.classes.filter((c): c is string => typeof c === 'string' && NAME.test(c)) : [];
      return { classes, current: typeof s.current === 'string' && RUN.test(s.current) ? s.current : null };
    } catch {
      // A new folder, or one made by hand: its class folders are the activities.
      const classes = readdirSync(this.dataDir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && NAME.test(e.name))
        .map((e) => e.name)
        .sort();
      return { classes, current: null };
    }
  }

  private writeState(): void {
    writeFileSync(`${this.statePath}.tmp`, JSON.stringify(this.state, null, 2) + '\n');
    renameSync(`${this.statePath}.tmp`, this.statePath);
  }
}

function checkName(raw: unknown): string {
  const name = typeof raw === 'string' ? raw.trim() : '';
  if (!NAME.test(name) || name.endsWith('.')) {
    throw new FramewiseError(
      ErrorCodes.USAGE,
      'an activity name has 1-40 letters, digits, spaces, dots, dashes or underscores, and starts with a letter or digit',
    );
  }
  return name;
}

function clipUrl(name: string, id: string): string {
  return `/api/teach/clips/${encodeURIComponent(name)}/${id}`;
}
