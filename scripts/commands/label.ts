// `framewise label <inputs...> --model <bundle>`: per-frame labels, segments, subtitles and an
// optional overlay video for each input. One bad input never stops the others; Ctrl-C (SIGTERM)
// finishes the files of the frames already labeled, marked partial, and exits 130 (143).
import { existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { openModel } from '../../models/open-model.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { expandInputs, type InputItem } from '../../pipeline/inputs.ts';
import { renderOverlay } from '../../pipeline/overlay.ts';
import { assertLocalFile, isUrl } from '../../pipeline/probe.ts';
import { labelVideo, type LabelVideoResult } from '../../pipeline/run-label.ts';
import { parseFormats, FORMAT_SUFFIX } from '../../pipeline/sinks/index.ts';
import { modelOptions, num, str, bool, type CommandSpec, modelRequest, precisionOptions } from '../command.ts';
import { Progress } from '../progress.ts';

export const command: CommandSpec = {
  name: 'label',
  summary: 'Label every frame of videos (files, folders, globs, URLs, - for stdin) with a trained bundle.',
  args: '<inputs...>',
  minArgs: 1,
  options: {
    model: { type: 'string', short: 'm', valueName: 'DIR', description: 'trained model bundle (framewise train output)' },
    out: { type: 'string', short: 'o', valueName: 'DIR', default: '.', description: "output folder, or '-' for JSONL on stdout" },
    formats: {
      type: 'string',
      valueName: 'LIST',
      default: 'jsonl,csv,vtt,activitynet',
      description: 'outputs to write (also cvat, labelstudio, elan: pre-annotations for those tools)',
    },
    'every-frame': { type: 'boolean', description: 'per-frame files get one line per source frame (labels mapped back from the bundle fps)' },
    overlay: { type: 'string', valueName: 'PATH', description: 'render labels onto the video: a file for one input, else a folder' },
    jobs: { type: 'string', short: 'j', valueName: 'N', default: '2', description: 'inputs labeled at the same time' },
    'min-segment-ms': {
      type: 'string',
      valueName: 'MS',
      default: String(DEFAULTS.smoothing.minSegmentMs),
      description: 'shorter segments merge into a neighbour',
    },
    hysteresis: {
      type: 'string',
      valueName: 'FRAMES',
      default: String(DEFAULTS.smoothing.hysteresisFrames),
      description: 'frames a new label must lead before a segment switches',
    },
    'smooth-window': {
      type: 'string',
      valueName: 'FRAMES',
      default: String(DEFAULTS.smoothing.windowFrames),
      description: 'moving average of probabilities for segments (odd; 1 = off)',
    },
    'unknown-below': {
      type: 'string',
      valueName: 'P',
      description:
        "frames whose top probability is below P are labeled 'unknown' (default: the bundle's calibration; 0 = never unknown: its distance check off too)",
    },
    'keep-unknown': { type: 'boolean', description: 'annotation formats: write unknown segments as a label (default: gaps for the annotator)' },
    'model-version': { type: 'string', valueName: 'NAME', description: 'Label Studio model_version / CVAT and ELAN author (default framewise)' },
    'ls-from-name': { type: 'string', valueName: 'NAME', description: 'Label Studio: the TimelineLabels control name (default videoLabels)' },
    'ls-to-name': { type: 'string', valueName: 'NAME', description: 'Label Studio: the Video tag name (default video)' },
    'ls-data-key': { type: 'string', valueName: 'KEY', description: 'Label Studio: task data key of the video (default video)' },
    'video-url': { type: 'string', valueName: 'URL', description: 'Label Studio and ELAN: the URL the tool loads the video from (default: the local path)' },
    ...modelOptions,
  },
  async run(ctx) {
    const { positionals, values, stderr, stdout } = ctx;
    const bundle = str(values, 'model');
    if (!bundle) throw new FramewiseError(ErrorCodes.USAGE, '--model <bundle> is required');
    const outDir = str(values, 'out')!;
    const formats = parseFormats(str(values, 'formats'));
    const jobs = num(values, 'jobs', 1, 64)!;
    const unknownBelow = num(values, 'unknown-below', 0, 1);
    const annotation = {
      keepUnknown: bool(values, 'keep-unknown'),
      modelVersion: str(values, 'model-version'),
      fromName: str(values, 'ls-from-name'),
      toName: str(values, 'ls-to-name'),
      dataKey: str(values, 'ls-data-key'),
      videoUrl: str(values, 'video-url'),
    };
    const smoothing = {
      minSegmentMs: num(values, 'min-segment-ms', 0)!,
      hysteresisFrames: num(values, 'hysteresis', 1)!,
      windowFrames: num(values, 'smooth-window', 1)!,
    };
    if (!existsSync(bundle)) throw new FramewiseError(ErrorCodes.MODEL_NOT_FOUND, `model bundle not found: ${bundle}`);
    const inputs = await expandInputs(positionals);
    if (inputs.length === 0) throw new FramewiseError(ErrorCodes.USAGE, `no video found in ${positionals.join(' ')}`);
    // Inputs are checked before the model loads (seconds): a missing file fails at once.
    const failures: { item: InputItem; err: unknown }[] = [];
    const items = inputs.filter((item) => {
      if (item.source === '-' || isUrl(item.source)) return true;
      try {
        assertLocalFile(item.source);
        return true;
      } catch (err) {
        failures.push({ item, err });
        stderr.write(`${item.name}: FAILED: ${(err as FramewiseError).message} [${(err as FramewiseError).code}]\n`);
        return false;
      }
    });
    if (items.length === 0) {
      stderr.write(`framewise label: ${failures.length} of ${inputs.length} input(s) failed\n`);
      return 1;
    }
    const overlay = str(values, 'overlay');
    const overlayPath = (it: InputItem) => overlay && (items.length === 1 && extname(overlay) ? overlay : join(overlay, `${it.name}.overlay.mp4`));
    if (overlay && outDir === '-' && items.some((i) => i.source === '-')) {
      throw new FramewiseError(ErrorCodes.USAGE, '--overlay needs a file input (stdin cannot be read twice)');
    }

    const model = await openModel({
      bundle,
      ...modelRequest(ctx),
      // The run's own videos calibrate an int8 export when one is asked for and none exists yet.
      ...precisionOptions(
        ctx,
        items.map((i) => i.source),
      ),
      onProgress: (m) => stderr.write(`${m}\n`),
    });
    const { meta } = model;
    stderr.write(
      `framewise label: ${items.length} input(s), bundle ${meta.classes.length} classes at ${meta.fps ?? 'source'} fps, embedder ${meta.embedderId}, unknown below ${unknownBelow ?? meta.unknownBelow ?? 0}\n`,
    );

    const abort = new AbortController();
    let stoppedBy: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals) => {
      stoppedBy ??= sig;
      stderr.write(`\nframewise label: interrupted (${sig}), finishing the outputs of frames already labeled...\n`);
      abort.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = new Progress(stderr, items.length);
    const results: LabelVideoResult[] = [];
    let next = 0;
    const worker = async () => {
      while (next < items.length && !abort.signal.aborted) {
        const item = items[next++]!;
        try {
          const r = await labelVideo({
            input: item.source === '-' ? process.stdin : item.source,
            name: item.name,
            model,
            outDir,
            formats,
            smoothing,
            stdout,
            everyFrame: bool(values, 'every-frame'),
            unknownBelow,
            annotation,
            signal: abort.signal,
            onNotice: (m) => stderr.write(`${item.name}: ${m}\n`),
            onProgress: (done, total) => progress.update(item.name, done, total),
          });
          progress.done(item.name);
          results.push(r);
          const ov = overlayPath(item);
          if (ov && !r.aborted && outDir !== '-' && r.files.jsonl) {
            await renderOverlay({ input: item.source, output: ov, labels: r.files.jsonl, classes: meta.classes, signal: abort.signal });
            stderr.write(`${item.name}: overlay ${ov}\n`);
          }
        } catch (err) {
          progress.done(item.name);
          failures.push({ item, err });
          const e = err instanceof FramewiseError ? `${err.message} [${err.code}]` : String((err as Error)?.stack ?? err);
          stderr.write(`${item.name}: FAILED: ${e}\n`);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, worker));
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      progress.clear();
      model.dispose();
    }

    for (const r of results) {
      const segs = r.segments.map((s) => `${s.label} ${(s.startMs / 1000).toFixed(1)}-${(s.endMs / 1000).toFixed(1)}s`).join(', ');
      stderr.write(
        `${r.name}: ${r.frames} frames${r.aborted ? ' (interrupted)' : ''}, ${r.segments.length} segment${r.segments.length === 1 ? '' : 's'}: ${segs}\n`,
      );
      if (outDir !== '-') stderr.write(`  -> ${formats.map((f) => join(outDir, r.name + FORMAT_SUFFIX[f])).join(', ')}\n`);
    }
    if (failures.length > 0) stderr.write(`framewise label: ${failures.length} of ${inputs.length} input(s) failed\n`);
    if (abort.signal.aborted) return stoppedBy === 'SIGTERM' ? 143 : 130;
    return failures.length > 0 ? 1 : 0;
  },
};
