// `framewise label` end to end, as a user runs it: a real bundle trained on generated data, the
// CLI in a child process, every output format parsed back, and the failure modes with their exit
// codes. The bundle comes from test/helpers/trained-bundle.ts (built once per machine).
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadEmbedder, type Embedder } from '../../../models/embedder.ts';
import { loadBundle } from '../../../models/recurrent/bundle.ts';
import { decodeThrough } from '../../../pipeline/decode.ts';
import { embed } from '../../../pipeline/embed-stage.ts';
import { labelVideo } from '../../../pipeline/run-label.ts';
import { randomSegments, writeSegmentsVideo } from '../../../scripts/synth-dataset.ts';
import { seededRandom } from '../../../core/seeded-random.ts';
import { expectActivityNet, parseVtt } from '../../helpers/output-shapes.ts';
import { runCli as cli } from '../../helpers/cli.ts';
import { MODELS_DIR } from '../../helpers/real-models.ts';
import { trainedBundle, TEST_EMBEDDER, type TrainedBundleFixture } from '../../helpers/trained-bundle.ts';
import { countFramesAtFps, makeTextFile, tmpDir, truncateCopy, type TmpDir } from '../../helpers/video.ts';

let fx: TrainedBundleFixture;
let dir: TmpDir;
let video: string;
let truth: string[];

beforeAll(async () => {
  fx = await trainedBundle();
  dir = tmpDir('fw-label-');
  // A held-out video (a seed the bundle never saw) with known per-frame labels at 10 fps.
  video = join(dir.path, 'heldout.mp4');
  truth = await writeSegmentsVideo(video, randomSegments(5, 10, seededRandom(321)), { fps: 10, seed: 321 });
}, 600_000);
afterAll(() => dir?.cleanup());

describe('framewise label', () => {
  test('writes every format; one JSONL line per frame ffprobe counts; labels match the truth', async () => {
    const out = join(dir.path, 'out');
    const r = await cli(['label', video, '--model', fx.bundle, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(join(out, 'heldout.frames.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(await countFramesAtFps(video, 10, dir.path));
    lines.forEach((l, i) => {
      expect(l.index).toBe(i);
      expect(l.timestampMs).toBeCloseTo(i * 100, 0);
      expect(Object.keys(l.probs).sort()).toEqual(fx.classes);
      expect(l.score).toBe(Math.max(...(Object.values(l.probs) as number[])));
    });
    // Stated accuracy: the generated activities are easy; 85% leaves room for transition frames.
    const right = lines.filter((l, i) => l.label === truth[i]).length;
    expect(right / lines.length).toBeGreaterThan(0.85);

    const csv = readFileSync(join(out, 'heldout.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe(['index', 'timestamp_ms', 'label', 'score', ...fx.classes].join(','));
    expect(csv.length - 1).toBe(lines.length);

    const vtt = parseVtt(readFileSync(join(out, 'heldout.vtt'), 'utf8'));
    expect(vtt.errors).toEqual([]);
    expect(vtt.cues.length).toBeGreaterThan(0);
    const segs = expectActivityNet(JSON.parse(readFileSync(join(out, 'heldout.segments.json'), 'utf8')), 'heldout');
    expect(segs.length).toBe(vtt.cues.length);
    expect(r.stderr).toMatch(/heldout: \d+ frames, \d+ segments/);
  });

  test('--out - streams JSONL to stdout and writes no files', async () => {
    const r = await cli(['label', video, '--model', fx.bundle, '--out', '-']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThan(100);
    expect(lines[0]).toMatchObject({ streamId: 'heldout', index: 0 });
  });

  test('bad inputs fail alone with their codes; the good input still finishes; exit 1', async () => {
    const out = join(dir.path, 'mixed');
    const text = makeTextFile(dir.path, 'notes.mp4');
    const truncated = truncateCopy(video, dir.path, 0.4);
    const r = await cli(['label', join(dir.path, 'missing.mp4'), text, truncated, video, '--model', fx.bundle, '--out', out, '--jobs', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing: FAILED: .*\[E_INPUT_NOT_FOUND\]/);
    expect(r.stderr).toMatch(/notes: FAILED: .*?\[E_DECODE_FAILED\]/s);
    expect(r.stderr).toMatch(/truncated-40-heldout: FAILED: .*?moov atom not found.*?\[E_DECODE_FAILED\]/s);
    expect(r.stderr).toMatch(/3 of 4 input\(s\) failed/);
    const good = readFileSync(join(out, 'heldout.frames.jsonl'), 'utf8').trim().split('\n');
    expect(good.length).toBe(truth.length);
  });

  test('inputs and the bundle are checked before the model loads: a missing file or bundle fails at once', async () => {
    const missing = await cli(['label', join(dir.path, 'nope.mp4'), '--model', fx.bundle, '--out', join(dir.path, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope: FAILED: input not found: .*\[E_INPUT_NOT_FOUND\]/);
    expect(missing.stderr).not.toMatch(/embedding engine|tfjs backend/);
    const noBundle = await cli(['label', video, '--model', join(dir.path, 'no-such-bundle')]);
    expect(noBundle.code).toBe(1);
    expect(noBundle.stderr).toMatch(/model bundle not found: .*\[E_MODEL_NOT_FOUND\]/);
  });

  test('a bundle whose embedder is not available, and an unwritable output folder', async () => {
    const bundle = join(dir.path, 'other-bundle');
    cpSync(fx.bundle, bundle, { recursive: true });
    const meta = JSON.parse(readFileSync(join(bundle, 'framewise.json'), 'utf8'));
    meta.embedderId = 'mobilenet_v1_1.0_224';
    writeFileSync(join(bundle, 'framewise.json'), JSON.stringify(meta));
    const empty = join(dir.path, 'no-models');
    const r1 = await cli(['label', video, '--model', bundle, '--models-dir', empty, '--out', join(dir.path, 'x')], {});
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/needs embedder mobilenet_v1_1\.0_224.*\[E_MODEL_NOT_FOUND\]/s);

    const blocker = join(dir.path, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const r2 = await cli(['label', video, '--model', fx.bundle, '--out', join(blocker, 'out')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/E_OUTPUT_FAILED/);

    const r3 = await cli(['label', video]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/--model <bundle> is required \[E_USAGE\]/);
  });

  /** The JSONL being written by a run into `out` (under its staging name), if any. */
  const stagedJsonl = (out: string, name: string): string | undefined => {
    const root = join(out, '.framewise-tmp');
    if (!existsSync(root)) return undefined;
    return readdirSync(root)
      .map((d) => join(root, d, `${name}.frames.jsonl`))
      .find((f) => existsSync(f));
  };
  /** Sends `signal` once the run has written more than 20 lines. */
  const killAfter20 = (out: string, name: string, signal: NodeJS.Signals, sent: { done: boolean }) => (p: ReturnType<typeof spawn>) => {
    const poll = setInterval(() => {
      const f = stagedJsonl(out, name);
      if (!sent.done && f && readFileSync(f, 'utf8').split('\n').length > 20) {
        sent.done = true;
        p.kill(signal);
        clearInterval(poll);
      }
    }, 50);
    p.on('close', () => clearInterval(poll));
  };
  let long: string;
  const longVideo = async () => {
    long ??= join(dir.path, 'long.mp4');
    if (!existsSync(long)) await writeSegmentsVideo(long, randomSegments(30, 10, seededRandom(5)), { fps: 10, seed: 5 });
    return long;
  };

  test.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s finishes the outputs of the frames already labeled, in place and marked partial: whole lines, closed JSON, exit %i',
    async (signal, code) => {
      const out = join(dir.path, `interrupted-${signal}`);
      const sent = { done: false };
      const r = await cli(['label', await longVideo(), '--model', fx.bundle, '--out', out], { kill: killAfter20(out, 'long', signal, sent) });
      expect(sent.done).toBe(true);
      expect(r.code, r.stderr).toBe(code);
      const text = readFileSync(join(out, 'long.frames.jsonl'), 'utf8');
      expect(text.endsWith('\n')).toBe(true);
      const lines = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.length).toBeGreaterThan(20);
      expect(lines.length).toBeLessThan(900);
      lines.forEach((l, i) => expect(l.index).toBe(i));
      const json = JSON.parse(readFileSync(join(out, 'long.segments.json'), 'utf8'));
      expectActivityNet(json, 'long');
      expect([json.complete, json.frames]).toEqual([false, lines.length]);
      expect(readdirSync(out).sort()).toEqual(['long.csv', 'long.frames.jsonl', 'long.segments.json', 'long.vtt']);
      expect(r.stderr).toMatch(new RegExp(`interrupted \\(${signal}\\)`));
    },
    180_000,
  );

  test('after SIGKILL only staging files remain; the next run removes them, says so, and labels a one-frame clip', async () => {
    const out = join(dir.path, 'killed');
    const sent = { done: false };
    const r = await cli(['label', await longVideo(), '--model', fx.bundle, '--out', out], { kill: killAfter20(out, 'long', 'SIGKILL', sent) });
    expect(sent.done).toBe(true);
    expect(r.code).toBe(null); // killed
    expect(readdirSync(out)).toEqual(['.framewise-tmp']);

    // A one-frame clip: ffmpeg's fps filter alone emits nothing for it.
    const one = join(dir.path, 'one.mp4');
    await new Promise<void>((ok, fail) =>
      spawn('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2', '-frames:v', '1', '-pix_fmt', 'yuv420p', one]).on('close', (c) =>
        c === 0 ? ok() : fail(new Error(`ffmpeg ${c}`)),
      ),
    );
    const r2 = await cli(['label', one, '--model', fx.bundle, '--out', out]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(/one: removed 4 staging file\(s\) of an earlier run that was killed before it finished: .*long\.frames\.jsonl/);
    expect(readdirSync(out).sort()).toEqual(['one.csv', 'one.frames.jsonl', 'one.segments.json', 'one.vtt']);
    const lines = readFileSync(join(out, 'one.frames.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.index, l.timestampMs])).toEqual([[0, 0]]);
    expect(fx.classes).toContain(lines[0].label);
    const json = JSON.parse(readFileSync(join(out, 'one.segments.json'), 'utf8'));
    expect([json.complete, json.frames, expectActivityNet(json, 'one').length]).toEqual([true, 1, 1]);
    expect(r2.stderr).toMatch(/one: 1 frames, 1 segment/);
  }, 180_000);
});

describe('labelVideo', () => {
  let embedder: Embedder;
  beforeAll(async () => {
    embedder = await loadEmbedder({ id: TEST_EMBEDDER, modelsDir: MODELS_DIR });
  });
  afterAll(() => embedder?.dispose());

  test('one run equals the head stepped frame by frame from a zero state', async () => {
    const { head, meta } = await loadBundle(fx.bundle);
    try {
      const res = await labelVideo({ model: { head, embedder, meta }, input: video, name: 'v', outDir: join(dir.path, 'lv'), formats: ['jsonl'], chunk: 16 });
      const lines = readFileSync(res.files.jsonl!, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const frames = await lastValueFrom(
        decodeThrough(video, { size: embedder.inputSize, crop: meta.crop, fps: meta.fps ?? undefined }, embed(embedder, { features: meta.features }), 8).pipe(
          toArray(),
        ),
      );
      expect(frames.length).toBe(lines.length);
      let state = head.zeroState();
      frames.forEach((f, i) => {
        const step = head.step(state, [f.embedding]);
        state = step.state;
        meta.classes.forEach((c, k) => expect(lines[i].probs[c]).toBeCloseTo(step.probs[0]![k]!, 5));
      });
    } finally {
      head.dispose();
    }
  });
});
