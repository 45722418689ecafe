import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import type { Segment } from '../../../core/types.ts';
import { segmentsToIntervals, type AnnotationOptions } from '../../../pipeline/sinks/annotation-media.ts';
import { cvatXml, parseCvatXml } from '../../../pipeline/sinks/cvat.ts';
import { eafXml, parseEaf } from '../../../pipeline/sinks/elan.ts';
import { openOutputs, parseFormats } from '../../../pipeline/sinks/index.ts';
import { labelStudioTasks, parseLabelStudioConfig, parseLabelStudioExport } from '../../../pipeline/sinks/label-studio.ts';
import { msToFrameRuns } from '../../../training/annotations/frame-labels.ts';
import { labelsFromString } from '../../helpers/frame-labels.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Segments over source frames [start, end) at `fps`, as the segmenter would report them. */
function segmentsAt(fps: number, runs: [string, number, number][]): Segment[] {
  return runs.map(([label, s, e]) => ({ label, startMs: (s * 1000) / fps, endMs: (e * 1000) / fps, startFrame: s, endFrame: e, score: 0.8 }));
}

type Run = { label: string; start: number; end?: number };
const plain = (rs: readonly Run[]) => rs.map((r) => ({ label: r.label, start: r.start, end: r.end }));

/** Each format written, then read back with its reader, as source-frame runs. */
function roundTrip(segments: Segment[], o: AnnotationOptions): Record<'cvat' | 'labelstudio' | 'elan', Run[]> {
  const fps = o.media!.fps;
  const cvat = parseCvatXml(cvatXml(segments, o, 'clip'), 'clip.cvat.xml');
  const ls = parseLabelStudioExport(JSON.stringify(labelStudioTasks(segments, o, 'clip')), 'clip.json', { from: 'predictions' });
  const eaf = parseEaf(eafXml(segments, o, '/tmp/out/clip.eaf'), 'clip.eaf');
  // A run to the end of the task reads back open-ended: close it at the video's end.
  const close = (rs: Run[]) => rs.map((r) => ({ ...r, end: r.end ?? o.media!.frameCount }));
  return { cvat: close(plain(cvat.intervals)), labelstudio: plain(ls[0]!.intervals), elan: plain(msToFrameRuns(eaf.intervals, fps)) };
}

describe('annotation formats round trip frame-exactly at the source rate', () => {
  // Rates whose frame times are not whole milliseconds, and a head slower than the source.
  for (const fps of [25, 30000 / 1001, 60]) {
    test(`${fps.toFixed(2)} fps: labels -> cvat / labelstudio / elan -> the same frames`, () => {
      const media = { path: '/videos/clip.mp4', fps, frameCount: 200, width: 64, height: 48 };
      const segs = segmentsAt(fps, [
        ['walk', 0, 17],
        ['unknown', 17, 30],
        ['sit', 30, 31],
        ['wave', 31, 120],
        ['background', 120, 150],
        ['walk', 150, 200],
      ]);
      const want = [
        { label: 'walk', start: 0, end: 17 },
        { label: 'sit', start: 30, end: 31 },
        { label: 'wave', start: 31, end: 120 },
        { label: 'walk', start: 150, end: 200 },
      ];
      const back = roundTrip(segs, { media });
      expect(back.cvat).toEqual(want);
      expect(back.labelstudio).toEqual(want);
      expect(back.elan).toEqual(want);
    });
  }

  test('--keep-unknown writes unknown as a label; unicode and XML-special labels survive', () => {
    const media = { path: '/videos/clip.mp4', fps: 25, frameCount: 50 };
    const segs = segmentsAt(25, [
      ['café <&> "ok"', 0, 10],
      ['unknown', 10, 20],
      ['手を振る', 20, 50],
    ]);
    const want = [
      { label: 'café <&> "ok"', start: 0, end: 10 },
      { label: 'unknown', start: 10, end: 20 },
      { label: '手を振る', start: 20, end: 50 },
    ];
    const back = roundTrip(segs, { media, keepUnknown: true });
    expect(back).toEqual({ cvat: want, labelstudio: want, elan: want });
  });

  test('a head slower than the source: segment boundaries land on the nearest source frame', () => {
    // Head at 10 fps on a 30 fps video: head frame k is source frame 3k.
    const segs = segmentsAt(10, [
      ['a', 0, 4],
      ['b', 4, 10],
    ]);
    expect(segmentsToIntervals(segs, 30)).toEqual([
      { label: 'a', start: 0, end: 12, score: 0.8 },
      { label: 'b', start: 12, end: 30, score: 0.8 },
    ]);
  });
});

describe('writers', () => {
  test('Label Studio predictions carry model_version, per-region scores, from/to names and the video URL', () => {
    const segs = segmentsAt(25, [
      ['walk', 0, 10],
      ['sit', 10, 40],
    ]);
    segs[1]!.score = 0.5;
    const [task] = labelStudioTasks(
      segs,
      {
        media: { path: '/v/clip.mp4', fps: 25 },
        modelVersion: 'run-7',
        fromName: 'act',
        toName: 'vid',
        videoUrl: '/data/local-files/?d=clips/clip.mp4',
        dataKey: 'video_url',
      },
      'clip',
    );
    expect(task!.data).toEqual({ video_url: '/data/local-files/?d=clips/clip.mp4' });
    const p = task!.predictions[0]!;
    expect(p.model_version).toBe('run-7');
    expect(p.score).toBeCloseTo((0.8 * 10 + 0.5 * 30) / 40, 6);
    expect(p.result.map((r) => [r.from_name, r.to_name, r.type, r.score, r.value])).toEqual([
      ['act', 'vid', 'timelinelabels', 0.8, { ranges: [{ start: 1, end: 10 }], timelinelabels: ['walk'] }],
      ['act', 'vid', 'timelinelabels', 0.5, { ranges: [{ start: 11, end: 40 }], timelinelabels: ['sit'] }],
    ]);
  });

  test('CVAT: a track ending before the video gets an outside keyframe; one running to the end does not', () => {
    const xml = cvatXml(
      segmentsAt(25, [
        ['a', 5, 10],
        ['b', 10, 50],
      ]),
      { media: { path: '/v/clip.mp4', fps: 25, frameCount: 50, width: 64, height: 48 } },
      'clip',
    );
    expect(xml).toContain('<source>clip.mp4</source>');
    expect(xml).toContain('<stop_frame>49</stop_frame>');
    expect(xml.match(/outside="1"/g)).toHaveLength(1);
    expect(xml).toMatch(/<box frame="10" keyframe="1" outside="1"/);
    expect(xml).toContain('xbr="64.00" ybr="48.00"');
  });

  test('ELAN links the media absolutely and relative to the .eaf', () => {
    const eaf = parseEaf(eafXml(segmentsAt(25, [['a', 0, 5]]), { media: { path: '/data/videos/my clip.mp4', fps: 25 } }, '/data/labels/x.eaf'), 'x.eaf');
    expect(eaf.media[0]).toMatchObject({ url: 'file:///data/videos/my%20clip.mp4', relative: '../videos/my%20clip.mp4', mime: 'video/mp4' });
  });

  test('parseFormats takes the annotation formats by name; `all` and the default stay the four files', () => {
    expect(parseFormats('elan, CVAT,labelstudio,jsonl')).toEqual(['jsonl', 'cvat', 'labelstudio', 'elan']);
    expect(parseFormats('all')).toEqual(['jsonl', 'csv', 'vtt', 'activitynet']);
  });

  test('openOutputs writes them from labeled frames; without the source video it is a usage error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fw-ann-'));
    dirs.push(dir);
    const classes = ['a', 'b'];
    expect(() => openOutputs({ name: 'clip', outDir: dir, classes, formats: ['cvat'] })).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    const out = openOutputs({
      name: 'clip',
      outDir: dir,
      classes,
      formats: parseFormats('cvat,labelstudio,elan'),
      smoothing: { minSegmentMs: 0, hysteresisFrames: 1 },
      annotation: { media: { path: path.join(dir, 'clip.mp4'), fps: 10, frameCount: 10, width: 32, height: 32 } },
    });
    for (const l of labelsFromString(classes, 'aaaabbbbbb')) await out.write(l);
    await out.close(1000);
    const want = [
      { label: 'a', start: 0, end: 4 },
      { label: 'b', start: 4, end: 10 },
    ];
    const cvat = parseCvatXml(fs.readFileSync(out.files.cvat!, 'utf8'), 'clip.cvat.xml');
    expect(cvat.intervals.map((r) => ({ label: r.label, start: r.start, end: r.end ?? 10 }))).toEqual(want);
    expect(plain(parseLabelStudioExport(fs.readFileSync(out.files.labelstudio!, 'utf8'), 'x', { from: 'predictions' })[0]!.intervals)).toEqual(want);
    expect(plain(msToFrameRuns(parseEaf(fs.readFileSync(out.files.elan!, 'utf8'), 'x').intervals, 10))).toEqual(want);
    expect(out.files.elan).toBe(path.join(dir, 'clip.eaf'));
  });
});

describe('readers on the tools’ documented shapes', () => {
  test('CVAT: start_frame, frame step, interpolated shapes, tags, outside keyframes', () => {
    // A video task from frame 10 to 40 with step=2: its frames are 10, 12, ..., 40 of the source.
    const xml = `<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><id>7</id><name>kitchen</name><size>16</size><mode>interpolation</mode><overlap>5</overlap>
    <start_frame>10</start_frame><stop_frame>40</stop_frame><frame_filter>step=2</frame_filter>
    <labels><label><name>stir</name><type>rectangle</type></label><label><name>pour</name><type>polygon</type></label><label><name>unused</name></label></labels>
    <original_size><width>640</width><height>480</height></original_size><source>kitchen.mp4</source></task>
    <dumped>2024-05-01 10:00:00.000000+00:00</dumped></meta>
  <track id="0" label="stir" source="manual">
    <box frame="12" keyframe="1" outside="0" occluded="0" xtl="1" ytl="2" xbr="30" ybr="40" z_order="0"></box>
    <box frame="14" keyframe="0" outside="0" occluded="0" xtl="1" ytl="2" xbr="30" ybr="40" z_order="0"></box>
    <box frame="16" keyframe="1" outside="1" occluded="0" xtl="1" ytl="2" xbr="30" ybr="40" z_order="0"></box>
    <box frame="30" keyframe="1" outside="0" occluded="0" xtl="1" ytl="2" xbr="30" ybr="40" z_order="0"></box>
  </track>
  <track id="1" label="pour" source="manual">
    <polygon frame="20" keyframe="1" outside="0" occluded="0" points="1,2;3,4;5,6" z_order="0"><attribute name="kind">milk</attribute></polygon>
    <polygon frame="24" keyframe="1" outside="1" occluded="0" points="1,2;3,4;5,6" z_order="0"></polygon>
  </track>
  <tag frame="26" label="pour" source="manual"></tag>
</annotations>`;
    const t = parseCvatXml(xml, 'kitchen.xml');
    expect(t).toMatchObject({ source: 'kitchen.mp4', startFrame: 10, stopFrame: 40, step: 2, width: 640, height: 480 });
    expect(plain(t.intervals)).toEqual([
      { label: 'stir', start: 12, end: 16 },
      { label: 'stir', start: 30, end: 41 },
      { label: 'pour', start: 20, end: 24 },
      { label: 'pour', start: 26, end: 28 },
    ]);
    expect(() => parseCvatXml(xml.replace('frame="26"', 'frame="27"'), 'kitchen.xml')).toThrow(
      /kitchen\.xml: tag: frame 27 is not a frame of the task \(start_frame 10, step 2/,
    );
    expect(() => parseCvatXml('<annotations><meta><project><name>p</name></project></meta></annotations>', 'p.xml')).toThrow(/project export/);
    expect(() => parseCvatXml('<annotations><track id="0"', 'broken.xml')).toThrow(/broken\.xml: not well-formed XML/);
  });

  test('Label Studio: the config gives the frame rate and video key; cancelled and empty annotations are skipped', () => {
    const config = parseLabelStudioConfig(
      `<View>
  <TimelineLabels name="videoLabels" toName="video"><Label value="Movement" background="#c813ec"/><Label value="Still"/></TimelineLabels>
  <Video name="video" value="$video_url" frameRate="25.0" timelineHeight="120"/>
</View>`,
      'config.xml',
    );
    expect(config).toEqual({ frameRate: 25, dataKey: 'video_url', videoName: 'video', labels: ['Movement', 'Still'] });
    expect(parseLabelStudioConfig('<View><Video name="v" value="$v"/></View>', 'c.xml').frameRate).toBe(24);
    const region = (label: string, start: number, end: number) => ({
      id: `r${start}`,
      type: 'timelinelabels',
      from_name: 'videoLabels',
      to_name: 'video',
      origin: 'manual',
      value: { ranges: [{ start, end }], timelinelabels: [label] },
    });
    const tasks = parseLabelStudioExport(
      JSON.stringify([
        {
          id: 1,
          data: { video_url: '/data/upload/3/1a2b3c4d-clip.mp4' },
          annotations: [
            { id: 10, was_cancelled: false, updated_at: '2024-05-02T10:00:00Z', result: [region('Still', 1, 10), region('Movement', 20, 25)] },
            { id: 11, was_cancelled: true, updated_at: '2024-05-03T10:00:00Z', result: [region('Still', 1, 100)] },
            { id: 9, was_cancelled: false, updated_at: '2024-05-01T10:00:00Z', result: [region('Movement', 1, 2)] },
          ],
        },
        { id: 2, data: { video_url: '/data/local-files/?d=clips/other.mp4' }, annotations: [], predictions: [{ result: [region('Still', 1, 5)] }] },
      ]),
      'export.json',
      { dataKey: config.dataKey },
    );
    expect(tasks.map((t) => [t.id, t.video, t.annotated])).toEqual([
      ['1', '/data/upload/3/1a2b3c4d-clip.mp4', true],
      ['2', '/data/local-files/?d=clips/other.mp4', false],
    ]);
    expect(plain(tasks[0]!.intervals)).toEqual([
      { label: 'Still', start: 0, end: 10 },
      { label: 'Movement', start: 19, end: 25 },
    ]);
  });

  test('ELAN: the first time-aligned tier by default, --tier by name, TIME_ORIGIN applied', () => {
    const eaf = `<?xml version="1.0" encoding="UTF-8"?>
<ANNOTATION_DOCUMENT AUTHOR="" DATE="2024-05-01T10:00:00+01:00" FORMAT="3.0" VERSION="3.0">
  <HEADER MEDIA_FILE="" TIME_UNITS="milliseconds">
    <MEDIA_DESCRIPTOR MEDIA_URL="file:///home/me/session.wav" MIME_TYPE="audio/x-wav" RELATIVE_MEDIA_URL="./session.wav"/>
    <MEDIA_DESCRIPTOR MEDIA_URL="file:///home/me/session.mp4" MIME_TYPE="video/mp4" RELATIVE_MEDIA_URL="./session.mp4" TIME_ORIGIN="40"/>
  </HEADER>
  <TIME_ORDER>
    <TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="0"/><TIME_SLOT TIME_SLOT_ID="ts2" TIME_VALUE="360"/>
    <TIME_SLOT TIME_SLOT_ID="ts3" TIME_VALUE="760"/><TIME_SLOT TIME_SLOT_ID="ts4" TIME_VALUE="1000"/><TIME_SLOT TIME_SLOT_ID="ts5"/>
  </TIME_ORDER>
  <TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="gesture">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts2"><ANNOTATION_VALUE>wave</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a2" TIME_SLOT_REF1="ts3" TIME_SLOT_REF2="ts4"><ANNOTATION_VALUE>point</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="posture">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a3" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts4"><ANNOTATION_VALUE>sit</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="broken">
    <ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a4" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts5"><ANNOTATION_VALUE>x</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION>
  </TIER>
  <LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="default-lt" TIME_ALIGNABLE="true"/>
</ANNOTATION_DOCUMENT>`;
    const doc = parseEaf(eaf, 'session.eaf');
    expect(doc.tier).toBe('gesture');
    expect(doc.tiers).toEqual(['gesture', 'posture', 'broken']);
    // At 25 fps (40 ms frames), shifted by the video's TIME_ORIGIN of 40 ms.
    expect(plain(msToFrameRuns(doc.intervals, 25))).toEqual([
      { label: 'wave', start: 1, end: 10 },
      { label: 'point', start: 20, end: 26 },
    ]);
    expect(plain(msToFrameRuns(parseEaf(eaf, 'session.eaf', 'posture').intervals, 25))).toEqual([{ label: 'sit', start: 1, end: 26 }]);
    expect(() => parseEaf(eaf, 'session.eaf', 'speech')).toThrow(/session\.eaf: no tier "speech" \(tiers: gesture, posture, broken\)/);
    expect(() => parseEaf(eaf, 'session.eaf', 'broken')).toThrow(/annotation a4 on tier "broken" has a time slot without a time value/);
  });
});
