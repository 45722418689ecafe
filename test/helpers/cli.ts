// The framewise CLI in a child process, as a user runs it (bin/framewise.js, the shared models):
// its exit code and everything it printed. `onStderr` sees stderr as it grows; `kill` gets the
// process, to signal it mid-run.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { MODELS_DIR, REPO_ROOT } from './real-models.ts';

export const BIN = resolve(REPO_ROOT, 'bin/framewise.js');

export function runCli(
  args: string[],
  o: { onStderr?: (s: string) => void; kill?: (p: ReturnType<typeof spawn>) => void } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, FRAMEWISE_MODELS: MODELS_DIR }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => {
      stderr += b;
      o.onStderr?.(stderr);
    });
    o.kill?.(p);
    p.on('close', (code) => ok({ code, stdout, stderr }));
  });
}
