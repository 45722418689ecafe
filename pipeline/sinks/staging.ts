// Output files are written under staging names and renamed into place when the run ends, so a
// file under a final name is always a finished run (complete, or cut short by a signal or an input
// error and saying so in its `.segments.json`), never one still being written or killed mid-way.
//
// A stage is a hidden folder next to the final files (`<dir>/.framewise-tmp/label.<host>.<pid>.<rand>/`;
// the same folder, so each rename is atomic). A process killed without a chance to finish
// (SIGKILL, a power cut) leaves only its stage; the next run writing into the same folder removes
// stages whose process is gone (same host, pid no longer alive) and says which.
import fs from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { outputError } from './files.ts';

/** Hidden folder of stages under an output folder (the queue stages its jobs there too). */
export const STAGING_DIR = '.framewise-tmp';
const PREFIX = 'label.';
const CLAIMED = '.removing';

export interface Stage {
  /** The folder the files are written in. */
  readonly dir: string;
  /** The staged path of a final file in the output folder. */
  staged(finalFile: string): string;
  /** Renames the staged files into place, in the given order; then removes the stage. */
  commit(finalFiles: readonly string[]): void;
  /** Removes the stage and what it holds. Never throws. */
  discard(): void;
}

/** Opens a fresh stage in `dir` (which exists). */
export function openStage(dir: string): Stage {
  const root = path.join(dir, STAGING_DIR);
  const stage = path.join(root, `${PREFIX}${hostname()}.${process.pid}.${Math.random().toString(36).slice(2, 10)}`);
  // Another run's clean-up may remove the empty root between the two mkdirs of a recursive mkdir.
  for (let attempt = 0; ; attempt++) {
    try {
      fs.mkdirSync(stage, { recursive: true });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 4) throw outputError(stage, err);
    }
  }
  const discard = () => {
    fs.rmSync(stage, { recursive: true, force: true });
    try {
      fs.rmdirSync(root); // only when empty: other runs may be staging
    } catch {
      // Not empty, or gone already.
    }
  };
  return {
    dir: stage,
    staged: (file) => path.join(stage, path.basename(file)),
    commit(finals) {
      for (const file of finals) {
        try {
          fs.renameSync(path.join(stage, path.basename(file)), file);
        } catch (err) {
          throw outputError(file, err);
        }
      }
      discard();
    },
    discard: () => {
      try {
        discard();
      } catch {
        // Best effort: the run has already failed or finished.
      }
    },
  };
}

/**
 * Removes the stages in `dir` left by runs on this host whose process no longer exists, and
 * returns the files they held (for the user to be told). Stages of live processes and of other
 * hosts (a shared folder) are left alone. Never throws: a stage that cannot be removed is retried
 * by the next run.
 */
export function removeStaleStages(dir: string): string[] {
  const root = path.join(dir, STAGING_DIR);
  let entries: string[];
  try {
    entries = fs.readdirSync(root);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.startsWith(PREFIX)) continue;
    if (entry.endsWith(CLAIMED)) {
      // Claimed by a run that was stopped while removing it (already reported): finish the job.
      try {
        fs.rmSync(path.join(root, entry), { recursive: true, force: true });
      } catch {
        // Retried by the next run.
      }
      continue;
    }
    const parts = entry.slice(PREFIX.length).split('.');
    const pid = Number(parts.at(-2));
    const host = parts.slice(0, -2).join('.');
    if (host !== hostname() || !Number.isInteger(pid) || pid <= 0 || alive(pid)) continue;
    const stage = path.join(root, entry);
    // Claimed by a rename first, so two runs starting together never both report it.
    const claimed = `${stage}${CLAIMED}`;
    try {
      fs.renameSync(stage, claimed);
      removed.push(...fs.readdirSync(claimed).map((f) => path.join(stage, f)));
      fs.rmSync(claimed, { recursive: true, force: true });
    } catch {
      // Another run claimed it, or it is not removable now.
    }
  }
  try {
    fs.rmdirSync(root);
  } catch {
    // Not empty (live stages), or gone already.
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
