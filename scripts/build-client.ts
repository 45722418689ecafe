// Builds the browser client (client/) into client/dist, the folder `framewise serve` hosts:
// an esbuild bundle of client/src/main.ts (with the shared server/protocol.ts) plus the HTML and
// CSS copied as they are. The on-device chain (tfjs, its backends, MobileNet, the shared head
// math) is a separate chunk loaded only when a page runs on the device, so app.js stays small.
// Run with `npm run build`; serve calls ensureClientBuilt() itself.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CLIENT_SRC = join(ROOT, 'client');
export const CLIENT_OUT = join(ROOT, 'client', 'dist');

/** Files whose change means the build is stale. */
function sources(): string[] {
  const src = join(CLIENT_SRC, 'src');
  return [
    join(CLIENT_SRC, 'index.html'),
    join(CLIENT_SRC, 'style.css'),
    join(CLIENT_SRC, 'favicon.svg'),
    join(ROOT, 'server', 'protocol.ts'),
    ...readdirSync(join(ROOT, 'core')).map((f) => join(ROOT, 'core', f)),
    join(ROOT, 'pipeline', 'frame-label.ts'),
    ...['head-math', 'bundle-meta', 'cells', 'state', 'input-norm', 'init'].map((f) => join(ROOT, 'models', 'recurrent', `${f}.ts`)),
    join(ROOT, 'models', 'registry.ts'),
    ...readdirSync(src).map((f) => join(src, f)),
  ];
}

export async function buildClient(outDir = CLIENT_OUT): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(CLIENT_SRC, 'src', 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // Current Chromium and Firefox; nothing older needs to be supported.
    target: ['chrome110', 'firefox115', 'safari16'],
    sourcemap: true,
    // Minified: tfjs alone is megabytes of source; the source maps keep it debuggable.
    minify: true,
    splitting: true,
    outdir: outDir,
    entryNames: 'app',
    chunkNames: 'chunks/[name]-[hash]',
    logLevel: 'warning',
  });
  copyFileSync(join(CLIENT_SRC, 'index.html'), join(outDir, 'index.html'));
  copyFileSync(join(CLIENT_SRC, 'style.css'), join(outDir, 'style.css'));
  copyFileSync(join(CLIENT_SRC, 'favicon.svg'), join(outDir, 'favicon.svg'));
}

/** Builds when client/dist is missing or older than any client source. Returns true if it built. */
export async function ensureClientBuilt(outDir = CLIENT_OUT): Promise<boolean> {
  const stamp = join(outDir, 'app.js');
  if (existsSync(stamp)) {
    const built = statSync(stamp).mtimeMs;
    let fresh = true;
    try {
      fresh = sources().every((f) => statSync(f).mtimeMs <= built);
    } catch {
      // Sources are absent in an install that ships only dist: keep what is there.
    }
    if (fresh && existsSync(join(outDir, 'index.html'))) return false;
  }
  await buildClient(outDir);
  return true;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildClient();
  process.stdout.write(`client built into ${CLIENT_OUT}\n`);
}
