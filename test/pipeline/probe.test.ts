// probe / ffmpegAvailable / the stderr digest used in decode's error messages.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { ffmpegAvailable, ffmpegFailure, findBinary, meaningfulStderr, probe } from '../../pipeline/probe.ts';
import { VIDEO_DIR, countFrames, makeAudioOnly, makeClip, makeTextFile, tmpDir } from '../helpers/video.ts';

const REAL_CLIP = join(VIDEO_DIR, 'labeled/ud810_ps7/action2/PS7A2P1T1.avi');
const dir = tmpDir('framewise-probe-');
let clip: string;
let withAudio: string;

beforeAll(async () => {
  [clip, withAudio] = await Promise.all([
    makeClip({ durationSec: 2, fps: 25, width: 320, height: 240, dir: dir.path }),
    makeClip({ durationSec: 1, fps: 10, width: 96, height: 64, audio: true, dir: dir.path }),
  ]);
});
afterAll(() => dir.cleanup());

const savedEnv = { FFMPEG_PATH: process.env.FFMPEG_PATH, FFPROBE_PATH: process.env.FFPROBE_PATH };
afterEach(() => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FramewiseError);
  return (err as FramewiseError).code;
}

describe('probe', () => {
  test('a generated clip: size, rate, duration, codec, no audio; frame count declared and counted', async () => {
    const info = await probe(clip);
    expect(info).toMatchObject({ width: 320, height: 240, fps: 25, durationMs: 2000, hasAudio: false, codec: 'h264' });
    expect(info.frameCount).toBe(50); // mp4 declares nb_frames
    expect((await probe(clip, { countFrames: true })).frameCount).toBe(50);
    expect((await probe(withAudio)).hasAudio).toBe(true);
  });

  test('a real clip: frame count equals ffprobe -count_frames', async () => {
    const info = await probe(REAL_CLIP, { countFrames: true });
    expect(info).toMatchObject({ width: 640, height: 480, codec: 'mpeg4', hasAudio: false });
    expect(info.fps).toBeCloseTo(29.97, 2);
    expect(info.frameCount).toBe(await countFrames(REAL_CLIP));
    expect(info.durationMs).toBeGreaterThan(1000);
  });

  test('bad inputs get typed errors', async () => {
    expect(await codeOf(probe(join(dir.path, 'missing.mp4')))).toBe(ErrorCodes.INPUT_NOT_FOUND);
    expect(await codeOf(probe(dir.path))).toBe(ErrorCodes.INPUT_NOT_FOUND); // a folder
    expect(await codeOf(probe(await makeAudioOnly(dir.path)))).toBe(ErrorCodes.NO_VIDEO_STREAM);
    expect(await codeOf(probe('-'))).toBe(ErrorCodes.USAGE);
    const text = makeTextFile(dir.path);
    const err = (await probe(text).catch((e: unknown) => e)) as FramewiseError;
    expect(err.code).toBe(ErrorCodes.DECODE_FAILED);
    expect(err.message).toContain(`${text}: Invalid data found when processing input`);
  });

  test('an MP4 whose moov atom is cut part way is damaged (E_DECODE_FAILED), not without video', async () => {
    const bytes = readFileSync(clip); // faststart: moov right after ftyp
    const moov = bytes.indexOf('moov') - 4;
    const size = bytes.readUInt32BE(moov);
    for (const fraction of [0.1, 0.3, 0.5, 0.8]) {
      const cut = join(dir.path, `moov-cut-${fraction}.mp4`);
      writeFileSync(cut, bytes.subarray(0, moov + Math.floor(size * fraction)));
      const err = (await probe(cut).catch((e: unknown) => e)) as FramewiseError;
      expect(err.code, `cut at ${fraction} of moov`).toBe(ErrorCodes.DECODE_FAILED);
    }
  });

  test('ffprobe missing: FFMPEG_MISSING naming the variable', async () => {
    process.env.FFPROBE_PATH = '/nonexistent/ffprobe';
    const err = (await probe(clip).catch((e: unknown) => e)) as FramewiseError;
    expect(err.code).toBe(ErrorCodes.FFMPEG_MISSING);
    expect(err.message).toMatch(/FFPROBE_PATH=\/nonexistent\/ffprobe/);
  });
});

describe('ffmpegAvailable', () => {
  test('finds both tools with their versions', async () => {
    const found = await ffmpegAvailable();
    expect(found.ffmpeg?.path).toBe(findBinary('ffmpeg'));
    expect(found.ffmpeg?.version).toMatch(/^\S*\d/);
    expect(found.ffprobe?.path).toMatch(/ffprobe$/);
    expect(found.ffprobe?.version).toBe(found.ffmpeg?.version);
  });

  test('reports a tool as absent when FFMPEG_PATH points nowhere', async () => {
    process.env.FFMPEG_PATH = '/nonexistent/ffmpeg';
    const found = await ffmpegAvailable();
    expect(found.ffmpeg).toBeUndefined();
    expect(found.ffprobe).toBeDefined();
  });
});

describe('stderr digest', () => {
  const stderr = [
    "[info] Input #0, avi, from 'x.avi':",
    '[info]   Duration: 00:00:03.64, start: 0.000000, bitrate: 837 kb/s',
    '[swscaler @ 0x5622ab5c6f40] [warning] deprecated pixel format used, make sure you did set range correctly',
    '[avi @ 0x55c795c00900] [warning] Packet corrupt (stream = 0, dts = 49).',
    '[avi @ 0x55c795c00900] [warning] Packet corrupt (stream = 0, dts = 50).',
    "[fatal] Stream map '0:V:0' matches no streams.",
    "To ignore this, add a trailing '?' to the map.",
  ];

  test('keeps warnings and errors with their continuation lines, drops info, addresses and repeats', () => {
    expect(meaningfulStderr(stderr)).toEqual([
      '[avi] Packet corrupt (stream = 0, dts = 49). (x2)',
      "Stream map '0:V:0' matches no streams.",
      "To ignore this, add a trailing '?' to the map.",
    ]);
    // Untagged `-v error` output: every line counts.
    expect(meaningfulStderr('x.txt: Invalid data found when processing input\n')).toEqual(['x.txt: Invalid data found when processing input']);
  });

  test('classifies failures by what ffmpeg said', () => {
    expect(ffmpegFailure('a', stderr, 'could not read').code).toBe(ErrorCodes.NO_VIDEO_STREAM);
    expect(ffmpegFailure('a', '[error] a: No such file or directory', 'could not read').code).toBe(ErrorCodes.INPUT_NOT_FOUND);
    expect(ffmpegFailure('a', '[error] Server returned 404 Not Found', 'could not read').code).toBe(ErrorCodes.INPUT_NOT_FOUND);
    const failed = ffmpegFailure('a', '[error] a: Invalid data found when processing input', 'could not read');
    expect(failed.code).toBe(ErrorCodes.DECODE_FAILED);
    expect(failed.message).toBe('could not read a as a video:\n  a: Invalid data found when processing input');
  });
});
