// decode: frame counts and timestamps against ffprobe, crop geometry, stdin, teardown, errors and
// backpressure. Clips are generated with lavfi at test time (test/helpers/video.ts).
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Observable, Subject, concatMap, firstValueFrom, lastValueFrom, take, tap, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decode, decodeFilters, decodeFrames, decodeThrough, decodeWithDemand, openFrameSource, probe } from '../../pipeline/decode.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import type { Frame } from '../../core/types.ts';
import {
  VIDEO_DIR,
  countFrames,
  countFramesAtFps,
  ffmpegChildren,
  frameTimesMs,
  makeAudioOnly,
  makeClip,
  makeTextFile,
  processAlive,
  tmpDir,
  truncateCopy,
  type TmpDir,
  waitFor,
} from '../helpers/video.ts';

const REAL_CLIP = join(VIDEO_DIR, 'labeled/ud810_ps7/action1/PS7A1P1T1.avi');
const REAL_MP4 = join(VIDEO_DIR, 'unlabeled/people/mmaction2_demo.mp4');
const SIDE = 224;
const FRAME_BYTES = SIDE * SIDE * 3;

const dir = tmpDir('framewise-decode-');
let clip25: string; // 2 s, 25 fps, 320x240, h264 in faststart mp4
let long: string; // 10 s, 25 fps: long enough for ffmpeg to be caught mid-stream

beforeAll(async () => {
  [clip25, long] = await Promise.all([
    makeClip({ durationSec: 2, fps: 25, width: 320, height: 240, dir: dir.path }),
    makeClip({ durationSec: 10, fps: 25, width: 320, height: 240, dir: dir.path }),
  ]);
  // fluent-ffmpeg's one-time capability queries (ffmpeg -formats/-encoders) run on the first
  // decode of a process; run it here so process counts below see only decoders.
  await collect(decode(clip25, { size: 8 }));
});
afterAll(() => dir.cleanup());

async function collect(frames$: ReturnType<typeof decode>): Promise<Frame[]> {
  return lastValueFrom(frames$.pipe(toArray()));
}

/** Frames delivered before the error, and the error (undefined if it completed). */
async function framesAndError(input: Parameters<typeof decodeFrames>[0]): Promise<{ frames: Frame[]; error?: FramewiseError }> {
  const frames: Frame[] = [];
  try {
    for await (const f of decodeFrames(input, { size: 16 })) frames.push(f);
  } catch (err) {
    return { frames, error: err as FramewiseError };
  }
  return { frames };
}

function pixel(f: Frame, x: number, y: number): [number, number, number] {
  const o = (y * f.width + x) * 3;
  return [f.rgb[o], f.rgb[o + 1], f.rgb[o + 2]];
}

describe('frame count and timestamps', () => {
  test('native rate: 2 s at 25 fps gives 50 frames at 0, 40, 80 ... ms, as ffprobe counts', async () => {
    const frames = await collect(decode(clip25));
    expect(frames.length).toBe(await countFrames(clip25));
    expect(frames.length).toBe(50);
    frames.forEach((f, i) => {
      expect(f.index).toBe(i);
      expect(f.timestampMs).toBeCloseTo(i * 40, 6);
      expect(f.width).toBe(SIDE);
      expect(f.height).toBe(SIDE);
      expect(f.rgb.length).toBe(FRAME_BYTES);
      expect(f.streamId).toBe(clip25);
    });
    // Each frame owns its memory (transferable, never overwritten by later frames).
    expect(frames[0].rgb.buffer).not.toBe(frames[1].rgb.buffer);
    expect(frames[0].rgb.byteLength).toBe(frames[0].rgb.buffer.byteLength);
  });

  test('resampled to 10 fps: 20 frames at 0, 100, 200 ... ms, as ffprobe counts an fps=10 re-encode', async () => {
    const frames = await collect(decode(clip25, { fps: 10 }));
    expect(frames.length).toBe(await countFramesAtFps(clip25, 10, dir.path));
    expect(frames.length).toBe(20);
    frames.forEach((f, i) => {
      expect(f.index).toBe(i);
      expect(f.timestampMs).toBeCloseTo(i * 100, 6);
    });
  });

  test('a one-frame clip, which the fps filter drops, still gives its frame at 10 fps (file and decodeFrames); ordinary counts unchanged', async () => {
    const one = await makeClip({ durationSec: 1, fps: 25, width: 320, height: 240, extra: ['-frames:v', '1'], dir: dir.path });
    expect(await countFrames(one)).toBe(1);
    const frames = await collect(decode(one, { fps: 10 }));
    expect(frames.map((f) => [f.index, f.timestampMs, f.rgb.length])).toEqual([[0, 0, FRAME_BYTES]]);
    const pulled: Frame[] = [];
    for await (const f of decodeFrames(one, { fps: 10 })) pulled.push(f);
    expect(pulled).toHaveLength(1);
    // The same pixels as a decode at the source's own rate.
    expect(Buffer.from(frames[0]!.rgb).equals(Buffer.from((await collect(decode(one)))[0]!.rgb))).toBe(true);
  });

  test('timestamps follow the stream timing, gaps included (variable frame rate)', async () => {
    // Frames 0-9 every 40 ms, then a 600 ms hole, then 40 ms again.
    const vfr = await makeClip({
      durationSec: 1,
      fps: 25,
      width: 64,
      height: 48,
      container: 'mkv',
      filters: ["setpts='(N+if(gte(N,10),15,0))/(25*TB)'"],
      extra: ['-fps_mode', 'passthrough'],
      dir: dir.path,
    });
    const expected = await frameTimesMs(vfr);
    const frames = await collect(decode(vfr, { size: 16 }));
    expect(frames.length).toBe(expected.length);
    expect(frames.length).toBe(await countFrames(vfr));
    frames.forEach((f, i) => expect(f.timestampMs).toBeCloseTo(expected[i], 3));
    expect(frames[10].timestampMs - frames[9].timestampMs).toBeCloseTo(640, 3);
  });

  test('a real 29.97 fps clip: count as ffprobe -count_frames, pts as ffprobe, and at 10 fps', async () => {
    const [frames, expected, times] = await Promise.all([collect(decode(REAL_CLIP)), countFrames(REAL_CLIP), frameTimesMs(REAL_CLIP)]);
    expect(frames.length).toBe(expected);
    // ffprobe has no time for the last frame (flushed from packed B-frames); ffmpeg extrapolates it.
    frames.forEach((f, i) => {
      if (Number.isFinite(times[i])) expect(f.timestampMs).toBeCloseTo(times[i], 2);
      else expect(f.timestampMs - frames[i - 1].timestampMs).toBeCloseTo(1000 / 29.97, 2);
    });
    expect(times.filter(Number.isFinite).length).toBeGreaterThan(frames.length - 3);
    // This AVI (time base 100/2997 s) starts at its second tick (packed B-frames), as ffprobe also says.
    expect(frames[0].timestampMs).toBeCloseTo(1000 / 29.97, 6);
    expect(frames[1].timestampMs - frames[0].timestampMs).toBeCloseTo(1000 / 29.97, 6);

    const at10 = await collect(decode(REAL_CLIP, { fps: 10 }));
    expect(at10.length).toBe(await countFramesAtFps(REAL_CLIP, 10, dir.path));
    at10.forEach((f, i) => expect(f.timestampMs).toBeCloseTo(i * 100, 6));
  });

  test('frames are cut exactly from the byte stream: identical to one ffmpeg run of the same filters', async () => {
    // 33x33 frames (3267 bytes) never align with pipe chunks; a moving pattern exposes any shift.
    const options = { size: 33, fps: 12 };
    const frames = await collect(decode(clip25, options));
    const direct = await new Promise<Buffer>((ok, fail) =>
      execFile(
        'ffmpeg',
        [
          '-v',
          'error',
          '-i',
          clip25,
          '-map',
          '0:V:0',
          '-vf',
          decodeFilters(options).join(','),
          '-fps_mode',
          'passthrough',
          '-pix_fmt',
          'rgb24',
          '-f',
          'rawvideo',
          '-',
        ],
        { encoding: 'buffer', maxBuffer: 1 << 26 },
        (err, stdout) => (err ? fail(err) : ok(stdout)),
      ),
    );
    expect(frames.length).toBe(direct.length / (33 * 33 * 3));
    expect(Buffer.compare(Buffer.concat(frames.map((f) => f.rgb)), direct)).toBe(0);
    expect(new Set(frames.map((f) => Buffer.from(f.rgb).toString('base64'))).size).toBeGreaterThan(frames.length / 2);
  });
});

describe('size and crop policy', () => {
  const BORDER = 40;
  // Blue picture with red bands at both ends of the long side.
  const bordered = (width: number, height: number) =>
    makeClip({
      durationSec: 0.2,
      fps: 10,
      width,
      height,
      pattern: 'color',
      color: 'blue',
      filters:
        width > height
          ? [`drawbox=x=0:y=0:w=${BORDER}:h=ih:color=red:t=fill`, `drawbox=x=iw-${BORDER}:y=0:w=${BORDER}:h=ih:color=red:t=fill`]
          : [`drawbox=x=0:y=0:w=iw:h=${BORDER}:color=red:t=fill`, `drawbox=x=0:y=ih-${BORDER}:w=iw:h=${BORDER}:color=red:t=fill`],
      dir: dir.path,
    });

  for (const [w, h] of [
    [321, 97],
    [97, 321],
  ]) {
    test(`center crop of ${w}x${h} is 224x224 and removes the red bands at the long ends`, async () => {
      const source = await bordered(w, h);
      expect(await probe(source)).toMatchObject({ width: w, height: h });
      const frames = await collect(decode(source, { crop: 'center' }));
      expect(frames.length).toBe(2);
      for (const f of frames) {
        expect([f.width, f.height, f.rgb.length]).toEqual([SIDE, SIDE, FRAME_BYTES]);
        let red = 0;
        let blue = 0;
        for (let o = 0; o < f.rgb.length; o += 3) {
          if (f.rgb[o] > 128 && f.rgb[o + 2] < 128) red += 1;
          if (f.rgb[o + 2] > 128 && f.rgb[o] < 128) blue += 1;
        }
        expect(red).toBe(0);
        expect(blue).toBe(SIDE * SIDE);
      }
      // The same source with 'pad' keeps the bands: proof the crop, not the source, removed them.
      const padded = await firstValueFrom(decode(source, { crop: 'pad' }));
      const mid = SIDE / 2;
      const end = w > h ? pixel(padded, 2, mid) : pixel(padded, mid, 2);
      expect(end[0]).toBeGreaterThan(128);
      expect(end[2]).toBeLessThan(128);
    });

    test(`pad of ${w}x${h} fits the long side and pads with exact black`, async () => {
      const source = await makeClip({ durationSec: 0.2, fps: 10, width: w, height: h, pattern: 'color', color: 'white', dir: dir.path });
      expect(await probe(source)).toMatchObject({ width: w, height: h });
      const frames = await collect(decode(source, { crop: 'pad' }));
      const content = Math.round((SIDE * Math.min(w, h)) / Math.max(w, h)); // 68
      const before = Math.floor((SIDE - content) / 2); // 78
      for (const f of frames) {
        expect(f.rgb.length).toBe(FRAME_BYTES);
        for (let i = 0; i < SIDE; i += 1) {
          // i runs across the short side: rows for a landscape source, columns for a portrait one.
          const p = w > h ? pixel(f, SIDE / 2, i) : pixel(f, i, SIDE / 2);
          const inside = i >= before && i < before + content;
          if (inside) expect(Math.min(...p)).toBeGreaterThan(200);
          else expect(p).toEqual([0, 0, 0]);
        }
      }
    });
  }

  test('an anamorphic source is cropped to the centre of its display picture (sample aspect ratio kept)', async () => {
    // 240x240 stored, SAR 2:1, so shown 480x240: its display square is the middle 120 stored
    // columns, and the red bands on the outer 60 columns each side are outside it.
    const source = await makeClip({
      durationSec: 0.2,
      fps: 10,
      width: 240,
      height: 240,
      pattern: 'color',
      color: 'blue',
      filters: ['drawbox=x=0:y=0:w=60:h=ih:color=red:t=fill', 'drawbox=x=iw-60:y=0:w=60:h=ih:color=red:t=fill', 'setsar=2'],
      dir: dir.path,
    });
    const f = await firstValueFrom(decode(source, { size: 64 }));
    const reds = Array.from({ length: 64 }, (_, x) => pixel(f, x, 32)).filter((p) => p[0] > 128 && p[2] < 128);
    expect(reds).toEqual([]);
    // Padded, the whole display picture (2:1) shows: bands at both ends, black above and below.
    const padded = await firstValueFrom(decode(source, { size: 64, crop: 'pad' }));
    expect(pixel(padded, 2, 32)[0]).toBeGreaterThan(128);
    expect(pixel(padded, 61, 32)[0]).toBeGreaterThan(128);
    expect(pixel(padded, 32, 32)[2]).toBeGreaterThan(128);
    expect(pixel(padded, 32, 4)).toEqual([0, 0, 0]);
  });

  test('size option: odd and small sides', async () => {
    for (const size of [65, 8]) {
      const f = await firstValueFrom(decode(clip25, { size }));
      expect([f.width, f.height, f.rgb.length]).toEqual([size, size, size * size * 3]);
    }
  });

  test('preFilters run before the scale/crop', async () => {
    // hflip before the crop mirrors the output; testsrc2 is not left-right symmetric.
    // A square source, so the crop window is the whole picture and mirroring commutes with it.
    const square = await makeClip({ durationSec: 0.2, fps: 10, width: 240, height: 240, dir: dir.path });
    const [plain, flipped] = await Promise.all([
      firstValueFrom(decode(square, { size: 32 })),
      firstValueFrom(decode(square, { size: 32, preFilters: ['hflip'] })),
    ]);
    const filters = decodeFilters({ preFilters: ['hflip'], fps: 5 });
    expect(filters.indexOf('hflip')).toBeLessThan(filters.findIndex((f) => f.startsWith('scale=')));
    // Mean absolute difference to the mirrored / unmirrored plain frame (scaling is not bit-symmetric).
    const diff = (mirror: boolean) => {
      let sum = 0;
      for (let y = 0; y < 32; y += 1)
        for (let x = 0; x < 32; x += 1) {
          const a = pixel(flipped, x, y);
          const b = pixel(plain, mirror ? 31 - x : x, y);
          sum += Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]);
        }
      return sum / (32 * 32 * 3);
    };
    expect(diff(true)).toBeLessThan(8);
    expect(diff(false)).toBeGreaterThan(30);
  });

  test('bad options are USAGE errors at call time', () => {
    expect(() => decode(clip25, { size: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    expect(() => decode(clip25, { fps: -1 })).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    expect(() => decode(clip25, { highWaterMark: 0 })).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
    expect(() => decode(clip25, { crop: 'stretch' as 'pad' })).toThrow(expect.objectContaining({ code: ErrorCodes.USAGE }));
  });
});

describe('stdin and streams', () => {
  test("'-' reads stdin (a separate node process fed the clip on its stdin)", async () => {
    const script = [
      `import { decodeFrames } from ${JSON.stringify(new URL('../../pipeline/decode.ts', import.meta.url).pathname)};`,
      'const out = [];',
      "for await (const f of decodeFrames('-', { size: 16 })) out.push([f.index, f.timestampMs, f.rgb.length, f.streamId]);",
      'console.log(JSON.stringify(out));',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    createReadStream(clip25).pipe(child.stdin);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b));
    child.stderr.on('data', (b: Buffer) => (stderr += b));
    const code = await new Promise<number | null>((ok) => child.on('close', ok));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as [number, number, number, string][];
    expect(out.length).toBe(50);
    out.forEach(([index, ts, bytes, streamId], i) => {
      expect(index).toBe(i);
      expect(ts).toBeCloseTo(i * 40, 6);
      expect(bytes).toBe(16 * 16 * 3);
      expect(streamId).toBe('stdin');
    });
  });

  test('a readable stream is decoded like the file', async () => {
    const frames = await collect(decode(createReadStream(clip25), { streamId: 'cam-1' }));
    expect(frames.length).toBe(50);
    frames.forEach((f, i) => {
      expect(f.streamId).toBe('cam-1');
      expect(f.timestampMs).toBeCloseTo(i * 40, 6);
    });
    const fromFile = await firstValueFrom(decode(clip25));
    expect(Buffer.compare(Buffer.from(frames[0].rgb), Buffer.from(fromFile.rgb))).toBe(0);
  });
});

describe('teardown', () => {
  test('one subscription runs one ffmpeg, and unsubscribing kills it', async () => {
    // Earlier tests' first-frame-only decodes SIGKILL their ffmpeg; let the last one be reaped.
    await waitFor(() => ffmpegChildren().length === 0, 3000, 'earlier ffmpeg processes to exit');
    let seen = 0;
    const sub = decode(long).subscribe({ next: () => (seen += 1) });
    await waitFor(() => seen >= 3, 5000, 'three frames');
    const pids = ffmpegChildren();
    expect(pids.length).toBe(1);
    sub.unsubscribe();
    await waitFor(() => !processAlive(pids[0]), 3000, `ffmpeg ${pids[0]} to exit`);
    expect(ffmpegChildren()).toEqual([]);
    expect(seen).toBeLessThan(250);
  });

  test('take(n) and breaking out of for-await also kill ffmpeg', async () => {
    const first = await lastValueFrom(decode(long).pipe(take(2), toArray()));
    expect(first.map((f) => f.index)).toEqual([0, 1]);
    await waitFor(() => ffmpegChildren().length === 0, 3000, 'ffmpeg to exit after take(2)');

    const source = openFrameSource(long);
    for await (const f of source) if (f.index === 4) break;
    const pid = source.pid!;
    expect(pid).toBeGreaterThan(0);
    await source.exited;
    expect(processAlive(pid)).toBe(false);
    expect(source.stats.framesOut).toBe(5);
  });

  test('unsubscribing before ffmpeg has started leaves no process', async () => {
    const sub = decode(long).subscribe();
    sub.unsubscribe();
    await new Promise((r) => setTimeout(r, 500)); // the probe finishes, the spawn must not happen
    expect(ffmpegChildren()).toEqual([]);
  });
});

describe('bad inputs', () => {
  let bad: TmpDir;
  beforeAll(() => {
    bad = tmpDir('framewise-bad-');
  });
  afterAll(() => bad.cleanup());

  test('missing file: INPUT_NOT_FOUND', async () => {
    const { frames, error } = await framesAndError(join(bad.path, 'nope.mp4'));
    expect(frames).toEqual([]);
    expect(error).toBeInstanceOf(FramewiseError);
    expect(error!.code).toBe(ErrorCodes.INPUT_NOT_FOUND);
    expect(error!.message).toContain('nope.mp4');
  });

  test('a text file: DECODE_FAILED with the ffmpeg reason, as a file and through stdin', async () => {
    const text = makeTextFile(bad.path);
    for (const input of [text, createReadStream(text)]) {
      const { frames, error } = await framesAndError(input);
      expect(frames).toEqual([]);
      expect(error!.code).toBe(ErrorCodes.DECODE_FAILED);
      expect(error!.message).toMatch(/Invalid data found when processing input/);
      expect(error!.message).not.toMatch(/ffmpeg version|built with|configuration:/);
    }
  });

  test('audio only: NO_VIDEO_STREAM, as a file and through stdin', async () => {
    const wav = await makeAudioOnly(bad.path);
    const fromFile = await framesAndError(wav);
    expect(fromFile.error!.code).toBe(ErrorCodes.NO_VIDEO_STREAM);
    const fromStream = await framesAndError(createReadStream(wav));
    expect(fromStream.error!.code).toBe(ErrorCodes.NO_VIDEO_STREAM);
    expect(fromStream.error!.message).toMatch(/matches no streams/);
  });

  test('first half of a real mp4 (index at the end): DECODE_FAILED naming the missing moov atom', async () => {
    const half = truncateCopy(REAL_MP4, bad.path, 0.5);
    const { frames, error } = await framesAndError(half);
    expect(frames).toEqual([]);
    expect(error!.code).toBe(ErrorCodes.DECODE_FAILED);
    expect(error!.message).toMatch(/moov atom not found/);
  });

  test('first half of a real AVI: the decodable frames are delivered, then DECODE_FAILED', async () => {
    // Policy under test: ffmpeg exits 0 here, but a stream it reports as corrupt/truncated is an error.
    const half = truncateCopy(REAL_CLIP, bad.path, 0.5);
    const expected = await countFrames(half);
    expect(expected).toBeGreaterThan(10);
    const frames: Frame[] = [];
    const error = await new Promise<FramewiseError>((ok, fail) =>
      decode(half, { size: 16 }).subscribe({ next: (f) => frames.push(f), error: ok, complete: () => fail(new Error('completed')) }),
    );
    expect(frames.length).toBe(expected);
    expect(frames.map((f) => f.index)).toEqual([...Array(expected).keys()]);
    expect(error.code).toBe(ErrorCodes.DECODE_FAILED);
    expect(error.message).toMatch(/truncated or corrupt/);
    expect(error.message).toMatch(/corrupt input packet|Packet corrupt/);
  });

  test('unreachable URL: INPUT_NOT_FOUND', async () => {
    const { error } = await framesAndError('http://127.0.0.1:9/none.mp4');
    expect(error!.code).toBe(ErrorCodes.INPUT_NOT_FOUND);
    expect(error!.message).toMatch(/Connection refused/);
  });

  test('ffmpeg or ffprobe missing: FFMPEG_MISSING', async () => {
    const saved = { ffmpeg: process.env.FFMPEG_PATH, ffprobe: process.env.FFPROBE_PATH };
    try {
      process.env.FFPROBE_PATH = '/nonexistent/ffprobe';
      const viaProbe = await framesAndError(clip25);
      expect(viaProbe.error!.code).toBe(ErrorCodes.FFMPEG_MISSING);
      expect(viaProbe.error!.message).toMatch(/FFPROBE_PATH/);
      process.env.FFMPEG_PATH = '/nonexistent/ffmpeg';
      const viaStream = await framesAndError(createReadStream(clip25));
      expect(viaStream.error!.code).toBe(ErrorCodes.FFMPEG_MISSING);
      expect(viaStream.error!.message).toMatch(/apt-get install ffmpeg/);
    } finally {
      for (const [k, v] of [
        ['FFMPEG_PATH', saved.ffmpeg],
        ['FFPROBE_PATH', saved.ffprobe],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('backpressure', () => {
  test('a consumer that stops pulling pauses ffmpeg: at most highWaterMark frames wait', async () => {
    const hwm = 4;
    const source = openFrameSource(long, { highWaterMark: hwm });
    const first = await source.next();
    expect(first.done).toBe(false);
    await new Promise((r) => setTimeout(r, 400));
    const held = source.stats.bytesIn;
    await new Promise((r) => setTimeout(r, 300));
    // ffmpeg decodes this clip in well under a second when not held back; here it is stuck.
    expect(source.stats.bytesIn).toBe(held);
    expect(source.stats.maxBufferedFrames).toBeLessThanOrEqual(hwm);
    expect(source.stats.pauses).toBeGreaterThan(0);
    // Bytes taken from the pipe: delivered + waiting + the frame being cut + one pipe chunk.
    expect(held).toBeLessThanOrEqual((1 + hwm + 1) * FRAME_BYTES + 65536);
    expect(processAlive(source.pid!)).toBe(true);

    let n = 1;
    let index = 0;
    for await (const f of source) {
      expect(f.index).toBe(++index);
      n += 1;
    }
    expect(n).toBe(250);
    expect(source.stats.maxBufferedFrames).toBeLessThanOrEqual(hwm);
  });

  test('tiny frames (hundreds per pipe chunk) still respect highWaterMark', async () => {
    const source = openFrameSource(long, { size: 4, highWaterMark: 3 });
    let n = 0;
    for await (const f of source) {
      if (f.index % 50 === 0) await new Promise((r) => setTimeout(r, 20)); // a consumer that stalls now and then
      n += 1;
    }
    expect(n).toBe(250);
    expect(source.stats.maxBufferedFrames).toBeLessThanOrEqual(3);
    expect(source.stats.pauses).toBeGreaterThan(0);
  });

  test('decodeWithDemand emits only against credit', async () => {
    const demand = new Subject<number>();
    const got: Frame[] = [];
    let done = false;
    const sub = decodeWithDemand(clip25, { size: 8 }, demand).subscribe({ next: (f) => got.push(f), complete: () => (done = true) });
    demand.next(3);
    await waitFor(() => got.length === 3, 5000, 'three frames');
    await new Promise((r) => setTimeout(r, 300));
    expect(got.length).toBe(3);
    demand.next(2);
    await waitFor(() => got.length === 5, 3000, 'five frames');
    demand.next(Infinity);
    await waitFor(() => done, 5000, 'completion');
    expect(got.map((f) => f.index)).toEqual([...Array(50).keys()]);
    sub.unsubscribe();
  });

  test('decodeThrough keeps an async stage lossless, ordered and bounded (plain decode does not)', async () => {
    const inFlight = 6;
    const run = async (through: boolean) => {
      let arrived = 0;
      let left = 0;
      let maxPending = 0;
      const stage = (frames$: Observable<Frame>) =>
        frames$.pipe(
          tap(() => {
            arrived += 1;
            maxPending = Math.max(maxPending, arrived - left);
          }),
          concatMap(async (f: Frame) => {
            await new Promise((r) => setTimeout(r, 3)); // a slow async model call
            left += 1;
            return f.index;
          }),
        );
      const out$ = through ? decodeThrough(clip25, { size: 8 }, stage, inFlight) : stage(decode(clip25, { size: 8 }));
      return { out: await lastValueFrom(out$.pipe(toArray())), maxPending };
    };
    const paced = await run(true);
    expect(paced.out).toEqual([...Array(50).keys()]);
    expect(paced.maxPending).toBeLessThanOrEqual(inFlight);
    // Without the credit loop, RxJS lets the decoder run ahead of the async stage.
    const unpaced = await run(false);
    expect(unpaced.out).toEqual([...Array(50).keys()]);
    expect(unpaced.maxPending).toBeGreaterThan(inFlight);
  });
});
