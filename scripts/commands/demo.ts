// `framewise demo`: the whole product on a fresh machine in about a minute. Generates a labeled
// dataset with ffmpeg (five activities, two of which only memory tells apart), trains a bundle,
// labels a held-out generated video, scores it against its known labels, renders the overlay.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadEmbeddingEngine } from '../../models/engine-choice.ts';
import { argmaxLabels, evaluateSequences } from '../../models/metrics.ts';
import { loadBundle } from '../../models/recurrent/bundle.ts';
import { resolveTrainConfig } from '../../training/config.ts';
import { prepareData } from '../../training/prepare.ts';
import { trainBundle } from '../../training/train-bundle.ts';
import { DEFAULTS } from '../../core/defaults.ts';
import { renderOverlay } from '../../pipeline/overlay.ts';
import { labelVideo } from '../../pipeline/run-label.ts';
import { seededRandom } from '../../core/seeded-random.ts';
import { randomSegments, synthDataset, writeSegmentsVideo } from '../synth-dataset.ts';
import { modelOptions, num, str, type CommandSpec, modelRequest } from '../command.ts';

export const command: CommandSpec = {
  name: 'demo',
  summary: 'Generate a small labeled dataset, train a bundle, label a held-out video, print metrics and segments, render the overlay.',
  options: {
    dir: { type: 'string', valueName: 'DIR', default: 'out/demo', description: 'where data, bundle and outputs go' },
    // The smallest MobileNet keeps the demo near a minute on two cores; `train` defaults to v2.
    embedder: { type: 'string', valueName: 'ID', default: 'mobilenet_v1_0.25_224', description: 'embedder for the demo' },
    videos: { type: 'string', valueName: 'N', default: '8', description: 'generated training videos' },
    epochs: { type: 'string', valueName: 'N', default: '20', description: 'training epochs' },
    seed: { type: 'string', valueName: 'N', default: String(DEFAULTS.seed), description: 'seed for data and training' },
    ...modelOptions,
  },
  async run(ctx) {
    const { values, stderr, stdout } = ctx;
    const t0 = performance.now();
    const log = (m: string) => stderr.write(`${m}\n`);
    const say = (m: string) => stdout.write(`${m}\n`);
    const dir = resolve(str(values, 'dir')!);
    const seed = num(values, 'seed')!;
    const fps = DEFAULTS.fps;

    say(`1/4 generating a labeled dataset in ${dir}/data (activities: steady, off, blink, bars, pattern)`);
    await synthDataset({ out: join(dir, 'data'), videos: num(values, 'videos', 2, 200)!, fps, seed });
    const heldout = join(dir, 'heldout.mp4');
    const truthNames = await writeSegmentsVideo(heldout, randomSegments(8, fps, seededRandom(seed + 1000)), { fps, seed: seed + 1000 });

    say('2/4 training the recurrent head (LSTM) on MobileNet embeddings');
    const request = modelRequest(ctx);
    const config = resolveTrainConfig({
      data: join(dir, 'data'),
      out: join(dir, 'bundle'),
      embedder: str(values, 'embedder'),
      epochs: num(values, 'epochs', 1)!,
      seed,
      valSplit: 0.25,
      augCopies: 1,
      modelsDir: request.modelsDir,
      cacheDir: request.cacheDir,
      // The generated activities are mostly still scenes (a colour, bars): the running-mean
      // normalisation that helps real footage generalise across people would erase them.
      inputNorm: 0,
    });
    const embedder = await loadEmbeddingEngine({ ...request, id: config.embedder, onProgress: log });
    try {
      const data = await prepareData(config, embedder, log);
      const trained = await trainBundle(config, data, { log });

      say(`3/4 labeling the held-out video ${heldout}`);
      const { head, meta } = await loadBundle(trained.dir);
      const result = await labelVideo({
        model: { head, embedder, meta },
        input: heldout,
        name: 'heldout',
        outDir: join(dir, 'labels'),
      });
      head.dispose();
      const lines = (await readFile(result.files.jsonl!, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { probs: Record<string, number> });
      const probs = lines.map((l) => meta.classes.map((c) => l.probs[c]!));
      const truth = Int32Array.from(truthNames.slice(0, probs.length), (n) => meta.classes.indexOf(n));
      const ev = evaluateSequences([{ pred: argmaxLabels(probs), truth, probs }], meta.classes);
      const pct = (x: number) => (x * 100).toFixed(1);
      say(
        `   held-out video: ${ev.frames} frames, frame accuracy ${pct(ev.accuracy)}%, macro F1 ${pct(ev.macroF1)}, Edit ${pct(ev.edit)}, F1@{10,25,50} ${pct(ev.f1['10'])}/${pct(ev.f1['25'])}/${pct(ev.f1['50'])}`,
      );
      say('   segments (predicted):');
      for (const s of result.segments)
        say(`     ${(s.startMs / 1000).toFixed(1).padStart(5)}-${(s.endMs / 1000).toFixed(1).padEnd(5)} s  ${s.label} (${s.score.toFixed(2)})`);

      say('4/4 rendering the overlay video');
      const overlay = join(dir, 'heldout.overlay.mp4');
      await renderOverlay({ input: heldout, output: overlay, labels: result.files.jsonl!, classes: meta.classes });
      say(`\ndone in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      say(`  bundle:   ${trained.dir} (report: ${trained.report.html})`);
      say(`  labels:   ${Object.values(result.files).join(', ')}`);
      say(`  overlay:  ${overlay}`);
      say(`  viewer:   node bin/framewise.js serve --model ${trained.dir} --media ${dir}   (then open http://127.0.0.1:8080)`);
      return 0;
    } finally {
      embedder.dispose();
    }
  },
};
