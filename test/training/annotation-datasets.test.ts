// Annotation-tool exports as datasets, on generated clips: each reader against the per-frame
// labels it should give, the errors that name file and position, and a training run from each
// format equal to the run from the same labels in the per-frame layout.
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Segment } from '../../core/types.ts';
import { loadEmbedder } from '../../models/embedder.ts';
import { cvatXml } from '../../pipeline/sinks/cvat.ts';
import { eafXml } from '../../pipeline/sinks/elan.ts';
import { labelStudioTasks } from '../../pipeline/sinks/label-studio.ts';
import { resolveTrainConfig } from '../../training/config.ts';
import { loadDataset, type DatasetOptions } from '../../training/dataset.ts';
import { prepareData } from '../../training/prepare.ts';
import { trainBundle } from '../../training/train-bundle.ts';
import { synthDataset } from '../../scripts/synth-dataset.ts';
import { MODELS_DIR } from '../helpers/real-models.ts';
import { TEST_EMBEDDER } from '../helpers/trained-bundle.ts';
import { makeClip, tmpDir } from '../helpers/video.ts';

const dir = tmpDir('fw-annotations-');
afterAll(() => dir.cleanup());

/** Runs of equal labels as segments at `fps` (what `label` would have written). */
function toSegments(labels: readonly string[], fps: number): Segment[] {
  const out: Segment[] = [];
  labels.forEach((l, i) => {
    const last = out[out.length - 1];
    if (last && last.label === l) {
      last.endFrame = i + 1;
      last.endMs = ((i + 1) * 1000) / fps;
    } else out.push({ label: l, startFrame: i, endFrame: i + 1, startMs: (i * 1000) / fps, endMs: ((i + 1) * 1000) / fps, score: 0.9 });
  });
  return out;
}

/** Writes each video's labels in one tool's format into `root` (videos under root/videos). */
function writeExport(root: string, format: 'cvat' | 'labelstudio' | 'elan', videos: { path: string; name: string; labels: string[] }[], fps: number) {
  mkdirSync(join(root, 'videos'), { recursive: true });
  const tasks: unknown[] = [];
  for (const v of videos) {
    const video = join(root, 'videos', `${v.name}.mp4`);
    copyFileSync(v.path, video);
    const media = { path: video, fps, frameCount: v.labels.length, width: 64, height: 48 };
    const segs = toSegments(v.labels, fps);
    if (format === 'cvat') writeFileSync(join(root, `${v.name}.xml`), cvatXml(segs, { media }, v.name));
    if (format === 'elan') writeFileSync(join(root, `${v.name}.eaf`), eafXml(segs, { media }, join(root, `${v.name}.eaf`)));
    if (format === 'labelstudio') {
      // As Label Studio exports it once an annotator accepted the predictions.
      const [t] = labelStudioTasks(segs, { media, videoUrl: `/data/upload/1/0a1b2c3d-${v.name}.mp4` }, v.name);
      tasks.push({ id: tasks.length + 1, data: t!.data, annotations: [{ id: 1, was_cancelled: false, result: t!.predictions[0]!.result }] });
    }
  }
  if (format === 'labelstudio') writeFileSync(join(root, 'project-1-at-2024.json'), JSON.stringify(tasks));
}

describe('annotation datasets on generated clips', () => {
  let clip25: string;
  let clip30: string;
  beforeAll(async () => {
    clip25 = await makeClip({ durationSec: 2, fps: 25, width: 64, height: 48, dir: dir.path });
    clip30 = await makeClip({ durationSec: 1, fps: 30, width: 64, height: 48, dir: dir.path });
  });

  const labels25 = [...Array(10).fill('wave'), ...Array(15).fill('background'), ...Array(20).fill('点头'), ...Array(5).fill('background')];
  const labels30 = [...Array(12).fill('sit'), ...Array(18).fill('wave')];

  for (const format of ['cvat', 'labelstudio', 'elan'] as const) {
    test(`${format}: detected, gaps read as background, a label of one video only, unicode, two frame rates`, async () => {
      const root = join(dir.path, `read-${format}`);
      writeExport(root, format, [{ path: clip25, name: 'a', labels: labels25 }], 25);
      // Each CVAT or ELAN file has its own video's rate; a Label Studio project has one rate for all.
      if (format !== 'labelstudio') writeExport(root, format, [{ path: clip30, name: 'b', labels: labels30 }], 30);
      const opts: DatasetOptions = format === 'labelstudio' ? { labelStudio: { fps: 25 } } : {};
      const ds = await loadDataset(root, opts);
      expect(ds.layout).toBe(format);
      expect(ds.classes).toEqual(format === 'labelstudio' ? ['background', 'wave', '点头'] : ['background', 'sit', 'wave', '点头']);
      const byName = Object.fromEntries(ds.videos.map((v) => [v.name, v.labels]));
      expect(byName.a).toEqual({ kind: 'frames', labels: labels25 });
      if (format !== 'labelstudio') expect(byName.b).toEqual({ kind: 'frames', labels: labels30 });
    });
  }

  test('CVAT inside its export zip', async () => {
    const root = join(dir.path, 'cvat-zip');
    writeExport(root, 'cvat', [{ path: clip25, name: 'a', labels: labels25 }], 25);
    const xml = readFileSync(join(root, 'a.xml'));
    writeFileSync(join(root, 'a.xml'), '');
    const zip = zipSync({ 'annotations.xml': new Uint8Array(xml), 'images/frame_000000.png': new Uint8Array(8) });
    writeFileSync(join(root, 'task_3_annotations.zip'), zip);
    const ds = await loadDataset(root, { layout: 'cvat' });
    expect(ds.videos.map((v) => [v.name, v.labels])).toEqual([['a', { kind: 'frames', labels: labels25 }]]);
  });

  test('overlaps and frame-rate mismatches are errors that name the file and the place', async () => {
    const cv = join(dir.path, 'overlap-cvat');
    writeExport(cv, 'cvat', [{ path: clip25, name: 'a', labels: labels25 }], 25);
    const xml = readFileSync(join(cv, 'a.xml'), 'utf8').replace(
      '</annotations>',
      '<track id="9" label="sit" source="manual"><box frame="5" keyframe="1" outside="0" occluded="0" xtl="0" ytl="0" xbr="1" ybr="1" z_order="0"/><box frame="12" keyframe="1" outside="1" occluded="0" xtl="0" ytl="0" xbr="1" ybr="1" z_order="0"/></track></annotations>',
    );
    writeFileSync(join(cv, 'a.xml'), xml);
    await expect(loadDataset(cv)).rejects.toMatchObject({
      code: 'E_DATASET_INVALID',
      message: expect.stringMatching(/a\.xml: track 9 \(frames 5-11\) "sit" overlaps track 0 \(frames 0-9\) "wave" from frame 5/),
    });

    const ls = join(dir.path, 'fps-ls');
    writeExport(ls, 'labelstudio', [{ path: clip25, name: 'a', labels: labels25 }], 25);
    await expect(loadDataset(ls)).rejects.toMatchObject({ code: 'E_USAGE', message: expect.stringContaining('--ls-fps') });
    writeFileSync(
      join(ls, 'config.xml'),
      '<View><TimelineLabels name="videoLabels" toName="video"><Label value="wave"/></TimelineLabels><Video name="video" value="$video" frameRate="24"/></View>',
    );
    await expect(loadDataset(ls, { labelStudio: { config: join(ls, 'config.xml') } })).rejects.toMatchObject({
      code: 'E_DATASET_INVALID',
      message: expect.stringMatching(
        /project-1-at-2024\.json: task 1: frames count at 24 fps \(<Video frameRate="24"> in .*config\.xml\) but a\.mp4 is 25 fps/,
      ),
    });

    const el = join(dir.path, 'long-elan');
    writeExport(el, 'elan', [{ path: clip25, name: 'a', labels: [...labels25, ...Array(10).fill('wave')] }], 25);
    await expect(loadDataset(el)).rejects.toMatchObject({
      message: expect.stringMatching(/a\.eaf: annotation a\d on tier "framewise" \(\d+-2400 ms\) ends at frame 59 but the video has 50 frames/),
    });

    const mixed = join(dir.path, 'mixed');
    writeExport(mixed, 'elan', [{ path: clip25, name: 'a', labels: labels25 }], 25);
    writeExport(mixed, 'cvat', [{ path: clip25, name: 'b', labels: labels25 }], 25);
    await expect(loadDataset(mixed)).rejects.toThrow(/several annotation tools: cvat \(b\.xml\); elan \(a\.eaf\); name one with --layout/);
  });

  test('training from each format equals training from the same labels in videos/ + labels/', async () => {
    const frames = join(dir.path, 'synth');
    const synth = await synthDataset({ out: frames, videos: 3, segmentsPerVideo: 2, fps: 10, width: 64, height: 48, seed: 3 });
    const videos = synth.videos.map((v, i) => ({ path: v.path, name: `v${i}`, labels: v.labels }));
    // Same names in every layout: the split and the seeds depend on them.
    const perFrame = join(dir.path, 'per-frame');
    mkdirSync(join(perFrame, 'videos'), { recursive: true });
    mkdirSync(join(perFrame, 'labels'), { recursive: true });
    for (const v of videos) {
      symlinkSync(v.path, join(perFrame, 'videos', `${v.name}.mp4`));
      writeFileSync(join(perFrame, 'labels', `${v.name}.txt`), `${v.labels.join('\n')}\n`);
    }
    const roots: Record<string, { root: string; opts?: DatasetOptions }> = { frames: { root: perFrame } };
    for (const f of ['cvat', 'labelstudio', 'elan'] as const) {
      roots[f] = { root: join(dir.path, `train-${f}`), opts: f === 'labelstudio' ? { labelStudio: { fps: 10 } } : undefined };
      writeExport(roots[f]!.root, f, videos, 10);
    }
    const embedder = await loadEmbedder({ id: TEST_EMBEDDER, modelsDir: MODELS_DIR });
    const weights: Record<string, string> = {};
    try {
      for (const [layout, { root, opts }] of Object.entries(roots)) {
        const out = join(dir.path, `bundle-${layout}`);
        const config = resolveTrainConfig({
          data: root,
          dataOptions: opts,
          out,
          embedder: TEST_EMBEDDER,
          modelsDir: MODELS_DIR,
          cacheDir: join(dir.path, 'cache'),
          epochs: 2,
          hidden: 8,
          valSplit: 0.34,
          augCopies: 0,
          seed: 4,
          inputNorm: 0,
        });
        const data = await prepareData(config, embedder, () => {});
        expect(data.layout).toBe(layout);
        await trainBundle(config, data, { log: () => {} });
        weights[layout] = readFileSync(join(out, 'weights.bin')).toString('base64');
      }
    } finally {
      embedder.dispose();
    }
    expect(weights.cvat).toBe(weights.frames);
    expect(weights.labelstudio).toBe(weights.frames);
    expect(weights.elan).toBe(weights.frames);
  }, 180_000);
});
