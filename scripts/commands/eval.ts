// `framewise eval --model B --data D`: streams every video through the head from a zero state,
// as live use would, and scores it (frame accuracy, macro F1, Edit, F1@k, mAP, per class,
// confusion). --tta averages the probabilities of ten fixed crops/flips per frame.
import { basename, join } from 'node:path';
import { evaluateSequences, predictLabels } from '../../models/metrics.ts';
import { openModel } from '../../models/open-model.ts';
import { unknownRuleOf } from '../../models/unknown-rule.ts';
import { ttaViews } from '../../training/augment.ts';
import { segmentEdit } from '../../training/score.ts';
import { embedDataset } from '../../training/embed-dataset.ts';
import { clipAccuracyOf, middleAccuracyOf, perVideoRows } from '../../training/per-video.ts';
import { writeReport, type ReportData } from '../../training/report.ts';
import { stitchClips } from '../../training/sequences.ts';
import { evaluatePass } from '../../models/recurrent/evaluate.ts';
import { loadDataset } from '../../training/dataset.ts';
import { ensureDir } from '../../pipeline/sinks/files.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { SeededRandom } from '../../core/seeded-random.ts';
import { bool, modelOptions, num, str, type CommandSpec, modelRequest, cacheDirOption, precisionOptions } from '../command.ts';
import { datasetOptions, datasetOptionsFrom } from '../dataset-options.ts';

export const command: CommandSpec = {
  name: 'eval',
  summary: 'Score a trained bundle on labeled videos (any dataset layout train reads).',
  options: {
    model: { type: 'string', short: 'm', valueName: 'DIR', description: 'trained model bundle' },
    data: { type: 'string', short: 'd', valueName: 'DIR', description: 'dataset root' },
    ...datasetOptions,
    tta: { type: 'boolean', description: 'test-time augmentation: average 10 crops/flips (4 corners + center, mirrored)' },
    'unknown-below': {
      type: 'string',
      valueName: 'P',
      description:
        "frames whose top probability is below P count as 'unknown', an error (default: the bundle's calibration; 0 = never unknown: its distance check off too)",
    },
    out: { type: 'string', short: 'o', valueName: 'DIR', defaultHelp: 'the bundle folder', description: 'write eval-report.html/.json here' },
    'cache-dir': cacheDirOption,
    ...modelOptions,
  },
  async run(ctx) {
    const { values, stderr, stdout } = ctx;
    const log = (m: string) => stderr.write(`${m}\n`);
    const bundle = str(values, 'model');
    const root = str(values, 'data');
    if (!bundle || !root) throw new FramewiseError(ErrorCodes.USAGE, '--model <bundle> and --data <dataset> are required');
    // The report folder is made (or found unwritable) before the evaluation, not after it.
    const outDir = str(values, 'out') ?? bundle;
    const unknownOption = num(values, 'unknown-below', 0, 1);
    ensureDir(outDir);
    const request = modelRequest(ctx);
    const model = await openModel({ bundle, ...request, ...precisionOptions(ctx, root ? [root] : []), onProgress: log });
    try {
      const { meta, head, embedder } = model;
      const ds = await loadDataset(root, datasetOptionsFrom(values));
      const unknown = ds.classes.filter((c) => !meta.classes.includes(c));
      if (unknown.length > 0) {
        throw new FramewiseError(
          ErrorCodes.DATASET_INVALID,
          `the dataset has classes the bundle does not know: ${unknown.join(', ')} (bundle: ${meta.classes.join(', ')})`,
        );
      }
      // Frames are decided as `label` decides them: below the threshold they are `unknown`.
      const rule = unknownRuleOf(meta, unknownOption);
      const unknownBelow = rule.below;
      const views = bool(values, 'tta') ? ttaViews(embedder.inputSize) : undefined;
      // A clip with nothing to score is named, never counted as right or wrong.
      const skipped: string[] = [];
      const embedded = await embedDataset(ds.videos, {
        embedder,
        classes: meta.classes,
        fps: meta.fps,
        crop: meta.crop,
        features: meta.features,
        cacheDir: request.cacheDir,
        views,
        onProgress: log,
        onSkip: (name, reason) => {
          skipped.push(name);
          log(`warning: skipped ${name}: ${reason}`);
        },
      });
      if (embedded.length === 0) throw new FramewiseError(ErrorCodes.DATASET_INVALID, `no video of ${root} has a decodable frame to score`);
      // Per video: per-frame probabilities, averaged over views when there are several.
      const probsOf = (perView: (typeof embedded)[number]) => {
        const passes = evaluatePass(
          head,
          perView.map((v) => ({ frames: v.embeddings })),
        ).probs;
        const n = Math.min(...passes.map((p) => p.length));
        return Array.from({ length: n }, (_, t) => {
          const avg = new Float32Array(meta.classes.length);
          for (const p of passes) p[t]!.forEach((x, c) => (avg[c]! += x / passes.length));
          return avg;
        });
      };
      const all = embedded.map((perView) => {
        const probs = probsOf(perView);
        return {
          name: perView[0]!.name,
          perView,
          probs,
          truth: perView[0]!.labels.subarray(0, probs.length),
          pred: predictLabels(probs, rule, perView[0]!.embeddings),
        };
      });
      // The bundle lists the clips it was trained on: scoring those says how well it fits, not
      // how well it generalises, so they are scored apart from the held-out ones.
      const trainedOn = new Set(trainingNames(meta.dataset));
      const heldOut = all.filter((s) => !trainedOn.has(s.name));
      const ownClips = all.filter((s) => trainedOn.has(s.name));
      const folders = ds.layout === 'folders';
      const unit = folders ? 'clips' : 'videos';
      const score = (set: typeof all) => {
        const report = evaluateSequences(set, meta.classes);
        const rows = perVideoRows(set, meta.classes, { singleLabel: folders });
        return { report: { ...report, clipAccuracy: folders ? clipAccuracyOf(rows) : undefined }, rows };
      };
      const main = heldOut.length > 0 ? heldOut : all;
      const mainName = heldOut.length === 0 ? `the bundle's own training ${unit}` : ownClips.length > 0 ? `held-out ${unit}` : unit;
      const primary = score(main);
      const own = heldOut.length > 0 && ownClips.length > 0 ? score(ownClips) : undefined;
      const fps = meta.fps ?? DEFAULTS.fps;
      const meanSegmentEdit = (seqs: readonly { probs: Float32Array[]; truth: ArrayLike<number>; embeddings: readonly Float32Array[] }[]) =>
        seqs.reduce((sum, q) => sum + segmentEdit(q.probs, q.truth, meta.classes, fps, { rule, embeddings: q.embeddings }), 0) / Math.max(1, seqs.length);
      const segmentEdits = { main: meanSegmentEdit(main.map((s) => ({ ...s, embeddings: s.perView[0]!.embeddings }))), stitched: NaN };
      let stitched: ReturnType<typeof evaluateSequences> | undefined;
      if (folders) {
        // Stitched sequences score transitions and carried state, as `train` validates them.
        const rng = new SeededRandom(DEFAULTS.seed);
        const clips = main.map((s) => s.perView[0]!);
        const seqs = stitchClips(clips, { sequences: Math.max(4, clips.length), clipsPerSequence: 4, rand: () => rng.next() });
        const pass = evaluatePass(
          head,
          seqs.map((s) => ({ frames: s.embeddings })),
        );
        stitched = evaluateSequences(
          pass.probs.map((p, i) => ({ pred: predictLabels(p, rule, seqs[i]!.embeddings), truth: seqs[i]!.labels, probs: p })),
          meta.classes,
        );
        segmentEdits.stitched = meanSegmentEdit(pass.probs.map((p, i) => ({ probs: p, truth: seqs[i]!.labels, embeddings: seqs[i]!.embeddings })));
      }
      const pct = (x: number) => (x * 100).toFixed(1);
      const line = (name: string, r: ReturnType<typeof evaluateSequences>) =>
        `${name}: ${r.frames} frames, accuracy ${pct(r.accuracy)}%, macro F1 ${pct(r.macroF1)}, Edit ${pct(r.edit)}, F1@{10,25,50} ${pct(r.f1['10'])}/${pct(r.f1['25'])}/${pct(r.f1['50'])}, mAP ${pct(r.mAP)}`;
      const validatedOn = new Set(trainingNames(meta.dataset, 'val'));
      const pickedEpoch =
        heldOut.length > 0 && heldOut.every((v) => validatedOn.has(v.name))
          ? `, which were its validation ${unit} (they picked its epoch, so slightly optimistic)`
          : '';
      const scope =
        heldOut.length === 0
          ? `all ${all.length} ${unit} are the bundle's own training ${unit} (listed in its framewise.json): these figures say how well it fits them, not how it does on new video`
          : ownClips.length > 0
            ? `${heldOut.length} held-out ${unit} (not in the bundle's training data)${pickedEpoch}; the other ${ownClips.length} are the bundle's own training ${unit} (listed in its framewise.json), scored apart`
            : `${heldOut.length} ${unit}, none of them in the bundle's training data${pickedEpoch}`;
      stdout.write(`scored on: ${scope}${views ? '; test-time augmentation averages 10 views per frame' : ''}\n`);
      if (skipped.length > 0) stdout.write(`skipped (no decodable frame, not scored): ${skipped.join(', ')}\n`);
      stdout.write(line(mainName, primary.report) + '\n');
      if (primary.report.clipAccuracy !== undefined) {
        const middle = middleAccuracyOf(primary.rows);
        stdout.write(
          `clip accuracy (majority of frames): ${pct(primary.report.clipAccuracy)}% of ${main.length} clips; ` +
            `frames in the middle half of each clip: ${pct(middle.mean)}% (mean over clips, lowest ${pct(middle.lowest)}%)\n`,
        );
      }
      if (stitched) stdout.write(line(`${mainName} stitched 4 per sequence (transitions scored)`, stitched) + '\n');
      stdout.write(
        `Edit of the segments label writes (default smoothing): ${pct(segmentEdits.main)} on ${mainName}` +
          (stitched ? `, ${pct(segmentEdits.stitched)} stitched` : '') +
          ' (the Edit figures above score raw per-frame labels)\n',
      );
      if (own)
        stdout.write(
          line(`the bundle's own training ${unit} (optimistic)`, own.report) +
            `${own.report.clipAccuracy !== undefined ? `, clip accuracy ${pct(own.report.clipAccuracy)}%` : ''}\n`,
        );
      stdout.write(`per class (${mainName}; precision and recall in %):\n`);
      primary.report.perClass.forEach((c, k) => {
        const u = primary.report.unknown.perClass[k]!;
        stdout.write(
          `  ${c.label.padEnd(16)} precision ${pct(c.precision).padStart(5)}  recall ${pct(c.recall).padStart(5)}  F1 ${pct(c.f1).padStart(5)}  unknown ${pct(u.share || 0).padStart(5)}  (${c.support} frames)\n`,
        );
      });
      stdout.write(
        `unknown (top probability below ${unknownBelow}${rule.far ? ` or farther from every class than its limit` : ''}${unknownOption === undefined ? ", the bundle's calibration" : ''}; counted as errors): ${pct(primary.report.unknown.share || 0)}% of ${primary.report.frames} frames\n`,
      );
      const alsoScored: NonNullable<ReportData['alsoScored']> = [];
      if (stitched)
        alsoScored.push({
          name: `${mainName}, stitched`,
          note: `${stitched.sequences} sequences of 4 clips (fixed seed): transitions and carried state scored`,
          report: stitched,
        });
      if (own) alsoScored.push({ name: `bundle's training ${unit}`, note: 'trained on: optimistic', report: own.report });
      const out = await writeReport(join(outDir, 'eval-report'), {
        title: `framewise evaluation: ${basename(bundle)} on ${root}${views ? ' (TTA, 10 views)' : ''}`,
        scope: `Scored on ${scope}. Every video is streamed through the head from a zero state, as the label command does.${views ? ' Test-time augmentation averages 10 crops/flips per frame.' : ''}`,
        evaluation: primary.report,
        evaluationName: mainName,
        alsoScored,
        perVideo: [
          ...primary.rows.map((r) => ({ ...r, group: heldOut.length > 0 ? 'held out' : 'trained on' })),
          ...(own?.rows ?? []).map((r) => ({ ...r, group: 'trained on' })),
        ],
        extra: { bundle, data: root, trainingNamesInBundle: trainedOn.size },
      });
      log(`report ${out.html}`);
      return 0;
    } finally {
      model.dispose();
    }
  },
};

function trainingNames(dataset: Record<string, unknown> | undefined, split: 'train' | 'val' = 'train'): string[] {
  const names = (dataset?.[split] as { names?: unknown } | undefined)?.names;
  return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
}
