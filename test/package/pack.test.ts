// The library face as a user meets it: the packed tarball (exactly the files npm would publish),
// unpacked into a temporary project's node_modules, imported from a plain `.mjs` file by Node
// without any TypeScript loader, labels a generated clip with two embedding workers; its JSONL
// equals `framewise label`'s for the same clip.
//
// The tarball's dependencies are linked from this checkout's node_modules instead of being
// installed from the registry: the same packages at the same versions, without the minutes a
// registry install of TensorFlow.js and ONNX Runtime takes.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MODELS_DIR, REPO_ROOT } from '../helpers/real-models.ts';
import { trainedBundle, type TrainedBundleFixture } from '../helpers/trained-bundle.ts';
import { makeClip, tmpDir, type TmpDir } from '../helpers/video.ts';

const run = promisify(execFile);
const SOURCE_DIRS = ['core', 'models', 'pipeline', 'training', 'server', 'queue', 'scripts'];

let dir: TmpDir;
let fx: TrainedBundleFixture;
let app: string;

/** Newest modification time of what the build is made from (the build config, index.ts, the layer folders). */
function newestSource(): number {
  let newest = Math.max(statSync(join(REPO_ROOT, 'index.ts')).mtimeMs, statSync(join(REPO_ROOT, 'tsconfig.build.json')).mtimeMs);
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') || p.endsWith('.mjs')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) walk(join(REPO_ROOT, d));
  return newest;
}

beforeAll(async () => {
  dir = tmpDir('framewise-pack-');
  fx = await trainedBundle();
  // `npm ci` builds dist/ (prepare); rebuild only when a source is newer than the build.
  const built = join(REPO_ROOT, 'dist', 'index.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) {
    await run('npm', ['run', 'build:lib'], { cwd: REPO_ROOT });
  }
  await run('npm', ['run', 'build'], { cwd: REPO_ROOT });
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir.path], { cwd: REPO_ROOT });
  const tarball = join(dir.path, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);

  app = join(dir.path, 'app');
  const modules = join(app, 'node_modules');
  mkdirSync(join(modules, 'framewise'), { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', join(modules, 'framewise'), '--strip-components=1']);
  for (const name of readdirSync(join(REPO_ROOT, 'node_modules'))) {
    if (name.startsWith('.') || name === 'framewise') continue;
    symlinkSync(join(REPO_ROOT, 'node_modules', name), join(modules, name));
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
}, 600_000);

afterAll(() => dir?.cleanup());

test('the tarball holds the build, not the sources', () => {
  const pkg = join(app, 'node_modules', 'framewise');
  expect(existsSync(join(pkg, 'dist', 'index.js'))).toBe(true);
  expect(existsSync(join(pkg, 'dist', 'index.d.ts'))).toBe(true);
  expect(existsSync(join(pkg, 'client', 'dist', 'app.js'))).toBe(true);
  expect(existsSync(join(pkg, 'pipeline'))).toBe(false);
  expect(existsSync(join(pkg, 'test'))).toBe(false);
});

test('plain Node imports framewise and labels a clip with two workers, as `framewise label` does', async () => {
  const clip = await makeClip({ durationSec: 3, fps: 25, width: 320, height: 240, dir: dir.path });
  const script = join(app, 'label.mjs');
  writeFileSync(
    script,
    [
      "import { openModel, labelVideo, FramewiseError, ErrorCodes } from 'framewise';",
      'const [bundle, modelsDir, input, outDir] = process.argv.slice(2);',
      "const model = await openModel({ bundle, modelsDir, engine: 'tfjs', workers: 2 });",
      'try {',
      "  const result = await labelVideo({ model, input, outDir, formats: ['jsonl'] });",
      '  console.log(JSON.stringify({ frames: result.frames, workers: model.embedder.workers, isError: new FramewiseError(ErrorCodes.USAGE, "x") instanceof Error }));',
      '} finally {',
      '  model.dispose();',
      '}',
    ].join('\n'),
  );
  const libOut = join(dir.path, 'lib-out');
  const cliOut = join(dir.path, 'cli-out');
  const env = { ...process.env, NODE_OPTIONS: '' };
  const lib = await run(process.execPath, [script, fx.bundle, MODELS_DIR, clip, libOut], { cwd: app, env });
  const summary = JSON.parse(lib.stdout.trim().split('\n').at(-1)!) as { frames: number; workers: number; isError: boolean };
  expect(summary.frames).toBeGreaterThan(0);
  expect(summary.workers).toBe(2);
  expect(summary.isError).toBe(true);

  await run(
    process.execPath,
    [resolve(REPO_ROOT, 'bin/framewise.js'), 'label', clip, '--model', fx.bundle, '--out', cliOut, '--formats', 'jsonl', '--engine', 'tfjs', '--workers', '2'],
    { cwd: REPO_ROOT, env: { ...env, FRAMEWISE_MODELS: MODELS_DIR } },
  );
  const name = `${basename(clip, extname(clip))}.frames.jsonl`;
  const libLines = readFileSync(join(libOut, name), 'utf8');
  const cliLines = readFileSync(join(cliOut, name), 'utf8');
  expect(libLines.trim().split('\n')).toHaveLength(summary.frames);
  expect(libLines).toBe(cliLines);
}, 300_000);
