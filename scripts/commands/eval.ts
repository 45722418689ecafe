// `framewise eval --model B --data D`: streams every video through the head from a zero state,
// as live use would, and scores it (frame accuracy, macro F1, Edit, F1@k, mAP, per class,
// confusion). --tta averages the probabilities of ten fixed crops/flips per frame.
import { join } from 'node:path';
import { evaluateSequences, argmaxLabels } from '../../models/metrics.ts';
import { parseEngineRequest } from '../../models/engine-choice.ts';
import { openModel } from '../../models/open-model.ts';
import { parseBackendRequest } from '../../models/backend.ts';
import { ttaViews } from '../../training/augment.ts';
import { embedDataset } from '../../training/embed-dataset.ts';
import { writeReport } from '../../training/report.ts';
import { stitchClips } from '../../training/sequences.ts';
import { evaluatePass } from '../../models/recurrent/evaluate.ts';
import { loadDataset } from '../../training/dataset.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { ErrorCodes, FramewiseError } from '../../core/errors.ts';
import { SeededRandom } from '../../core/seeded-random.ts';
import { bool, modelOptions, num, precisionOptions, str, type CommandSpec } from '../command.ts';

export const command: CommandSpec = {
  name: 'eval',
  summary: 'Score a trained bundle on labeled videos (any of the three dataset layouts).',
  options: {
    model: { type: 'string', short: 'm', valueName: 'DIR', description: 'trained model bundle' },
    data: { type: 'string', short: 'd', valueName: 'DIR', description: 'dataset root' },
    tta: { type: 'boolean', description: 'test-time augmentation: average 10 crops/flips (4 corners + center, mirrored)' },
    out: { type: 'string', short: 'o', valueName: 'DIR', description: 'write eval-report.html/.json here (default: the bundle folder)' },
    'cache-dir': { type: 'string', valueName: 'DIR', default: DEFAULTS.cacheDir, description: 'embedding cache' },
    ...modelOptions,
  },
  async run({ values, stderr, stdout }) {
    const log = (m: string) => stderr.write(`${m}\n`);
    const bundle = str(values, 'model');
    const root = str(values, 'data');
    if (!bundle || !root) throw new FramewiseError(ErrorCodes.USAGE, '--model <bundle> and --data <dataset> are required');
    const model = await openModel({ bundle, modelsDir: str(values, 'models-dir'), backend: parseBackendRequest(str(values, 'backend') ?? process.env.FRAMEWISE_BACKEND), engine: parseEngineRequest(str(values, 'engine')), workers: num(values, 'workers', 1, 64), ...precisionOptions(values, root ? [root] : []), onProgress: log });
    try {
      const { meta, head, embedder } = model;
      const ds = await loadDataset(root);
      const unknown = ds.classes.filter((c) => !meta.classes.includes(c));
      if (unknown.length > 0) {
        throw new FramewiseError(ErrorCodes.DATASET_INVALID, `the dataset has classes the bundle does not know: ${unknown.join(', ')} (bundle: ${meta.classes.join(', ')})`);
      }
      const views = bool(values, 'tta') ? ttaViews(embedder.inputSize) : undefined;
      const embedded = await embedDataset(ds.videos, {
        embedder, classes: meta.classes, fps: meta.fps, crop: meta.crop, cacheDir: str(values, 'cache-dir')!, views, onProgress: log,
      });
      // Per video: per-frame probabilities, averaged over views when there are several.
      const probsOf = (perView: typeof embedded[number]) => {
        const passes = evaluatePass(head, perView.map((v) => ({ frames: v.embeddings }))).probs;
        const n = Math.min(...passes.map((p) => p.length));
        return Array.from({ length: n }, (_, t) => {
          const avg = new Float32Array(meta.classes.length);
          for (const p of passes) p[t]!.forEach((x, c) => (avg[c]! += x / passes.length));
          return avg;
        });
      };
      const scored = embedded.map((perView) => {
        const probs = probsOf(perView);
        return { name: perView[0]!.name, probs, truth: perView[0]!.labels.subarray(0, probs.length), pred: argmaxLabels(probs) };
      });
      const report = evaluateSequences(scored, meta.classes);
      let clipAccuracy: number | undefined;
      let stitched: ReturnType<typeof evaluateSequences> | undefined;
      if (ds.layout === 'folders') {
        // Clip accuracy: the majority of a clip's frames decides its label.
        clipAccuracy = scored.filter((s) => {
          const votes = new Array<number>(meta.classes.length).fill(0);
          for (const l of s.pred) votes[l]!++;
          return votes.indexOf(Math.max(...votes)) === s.truth[0];
        }).length / scored.length;
        // Stitched sequences score transitions and carried state, as `train` validates them.
        const rng = new SeededRandom(DEFAULTS.seed);
        const seqs = stitchClips(embedded.map((v) => v[0]!), { sequences: Math.max(4, embedded.length), clipsPerSequence: 4, rand: () => rng.next() });
        const pass = evaluatePass(head, seqs.map((s) => ({ frames: s.embeddings })));
        stitched = evaluateSequences(pass.probs.map((p, i) => ({ pred: argmaxLabels(p), truth: seqs[i]!.labels, probs: p })), meta.classes);
      }
      const pct = (x: number) => (x * 100).toFixed(1);
      const line = (name: string, r: typeof report) =>
        `${name}: ${r.frames} frames, accuracy ${pct(r.accuracy)}%, macro F1 ${pct(r.macroF1)}, Edit ${pct(r.edit)}, F1@{10,25,50} ${pct(r.f1['10'])}/${pct(r.f1['25'])}/${pct(r.f1['50'])}, mAP ${pct(r.mAP)}`;
      stdout.write(line(ds.layout === 'folders' ? 'clips' : 'videos', report) + '\n');
      if (clipAccuracy !== undefined) stdout.write(`clip accuracy (majority of frames): ${pct(clipAccuracy)}% of ${scored.length} clips\n`);
      if (stitched) stdout.write(line('stitched sequences', stitched) + '\n');
      for (const c of report.perClass) stdout.write(`  ${c.label.padEnd(16)} precision ${pct(c.precision).padStart(5)}  recall ${pct(c.recall).padStart(5)}  F1 ${pct(c.f1).padStart(5)}  (${c.support} frames)\n`);
      const out = await writeReport(join(str(values, 'out') ?? bundle, 'eval-report'), {
        title: `framewise evaluation: ${bundle} on ${root}${views ? ' (TTA, 10 views)' : ''}`,
        evaluation: { ...report, clipAccuracy },
        extra: { stitched, perVideo: scored.map((s) => ({ name: s.name, accuracy: report.frames ? frameAcc(s.pred, s.truth) : NaN })) },
      });
      log(`report ${out.html}`);
      return 0;
    } finally {
      model.dispose();
    }
  },
};

function frameAcc(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  let right = 0;
  for (let i = 0; i < truth.length; i++) if (pred[i] === truth[i]) right++;
  return truth.length ? right / truth.length : NaN;
}
