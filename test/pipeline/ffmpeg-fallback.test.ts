// Without a system ffmpeg: the lookup falls back to the binaries inside the optional npm packages
// (ffmpeg 4.1 there), the decoder speaks that version's options (-vsync, not -fps_mode), and a
// real command decodes and embeds a clip in a child process whose PATH hides /usr/bin.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';
import { locateBinary, passthroughOption } from '../../pipeline/probe.ts';
import { readEmbeddingFile } from '../../models/embedding-file.ts';
import { MODELS_DIR, REPO_ROOT } from '../helpers/real-models.ts';
import { countFramesAtFps, makeClip, tmpDir } from '../helpers/video.ts';

const run = promisify(execFile);
const NO_SYSTEM = { PATH: '/nonexistent' };
const packaged = locateBinary('ffmpeg', NO_SYSTEM);
const packagedProbe = locateBinary('ffprobe', NO_SYSTEM);
const dir = tmpDir('framewise-fallback-');
afterAll(() => dir.cleanup());

test('the system ffmpeg comes first; an explicit FFMPEG_PATH that is wrong is not replaced', () => {
  expect(locateBinary('ffmpeg', { PATH: '/usr/bin' })).toEqual({ path: '/usr/bin/ffmpeg', source: 'PATH' });
  expect(locateBinary('ffmpeg', { PATH: '/usr/bin', FFMPEG_PATH: '/nope/ffmpeg' })).toBeUndefined();
});

describe.skipIf(!packaged || !packagedProbe)("the npm packages' binaries (installed for this platform)", () => {
  test('found when the PATH has no ffmpeg, named by their package', () => {
    expect(packaged!.source).toBe('@ffmpeg-installer/ffmpeg');
    expect(packaged!.path).toContain(join('node_modules', '@ffmpeg-installer'));
    expect(packagedProbe!.source).toBe('@ffprobe-installer/ffprobe');
  });

  test('the frame-exact passthrough option suits each version', () => {
    expect(passthroughOption(packaged!.path)).toEqual(['-vsync', 'passthrough']);
    if (existsSync('/usr/bin/ffmpeg')) expect(passthroughOption('/usr/bin/ffmpeg')).toEqual(['-fps_mode', 'passthrough']);
  });

  test('embed decodes every frame with them, PATH without /usr/bin', async () => {
    const clip = await makeClip({ durationSec: 2, fps: 25, width: 320, height: 240, codec: 'mpeg4', container: 'avi', dir: dir.path });
    const out = join(dir.path, 'out') + '/';
    const env = { ...process.env, ...NO_SYSTEM, FRAMEWISE_MODELS: MODELS_DIR, FFMPEG_PATH: '', FFPROBE_PATH: '' };
    const { stderr } = await run(
      process.execPath,
      [
        join(REPO_ROOT, 'bin/framewise.js'),
        'embed',
        clip,
        '--embedder',
        'mobilenet_v1_0.25_224',
        '--fps',
        '10',
        '--out',
        out,
        '--workers',
        '1',
        '--engine',
        'tfjs',
      ],
      { env, cwd: REPO_ROOT },
    );
    const file = await readEmbeddingFile(join(out, `${basename(clip, extname(clip))}.emb`));
    expect(file.embeddings.length).toBe(await countFramesAtFps(clip, 10, dir.path));
    expect(stderr).not.toMatch(/fps_mode|Unrecognized option/);
  }, 120_000);
});
