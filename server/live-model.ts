// The model the server labels with now, swappable. `serve --model B` starts with bundle B; a
// teach-only server starts with the embedder alone (no head: live frames and jobs get E_NO_MODEL);
// a bundle taught in the Teach view replaces the head for sessions and jobs started after the swap.
// A session keeps the scheduler it started with (its state belongs to that head), so old heads
// stay alive while such sessions may use them; the taught ones are small.
import { unknownRuleOf } from '../models/unknown-rule.ts';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { Embedder } from '../models/embedder.ts';
import { loadBundle, saveBundle, type BundleMeta } from '../models/recurrent/bundle.ts';
import type { RecurrentHead } from '../models/recurrent/head.ts';
import { ErrorCodes, FramewiseError } from '../core/errors.ts';
import { LiveScheduler } from '../pipeline/live-scheduler.ts';
import type { ModelInfo } from './protocol.ts';
import { featureDim } from '../models/motion.ts';

export type ModelMeta = Pick<BundleMeta, 'classes' | 'embedderId' | 'features' | 'fps' | 'crop' | 'unknownBelow' | 'unknownFar'>;

interface Current {
  head: RecurrentHead;
  meta: ModelMeta;
  scheduler: LiveScheduler;
  /** The bundle folder (model.json, weights.bin, framewise.json), once there is one. */
  bundleDir: string | undefined;
}

export class LiveModel {
  private current: Current | undefined;
  /** Heads made by load(), freed by close(). */
  private readonly owned: RecurrentHead[] = [];
  private writing: Promise<string> | undefined;

  constructor(
    readonly embedder: Embedder,
    private readonly maxBatch: number,
    /** Where a bundle of an in-memory model is written when a browser asks for its files. */
    private readonly scratchDir: string,
    first?: { head: RecurrentHead; meta: ModelMeta; bundleDir?: string },
  ) {
    if (first) this.current = this.make(first.head, first.meta, first.bundleDir);
  }

  get hasModel(): boolean {
    return this.current !== undefined;
  }

  /** The live scheduler of the current head; E_NO_MODEL before the first one. */
  get scheduler(): LiveScheduler {
    return this.need().scheduler;
  }

  get head(): RecurrentHead {
    return this.need().head;
  }

  get meta(): ModelMeta {
    return this.need().meta;
  }

  /** What a client is told in welcome and /api/info (no classes before the first model). */
  get info(): ModelInfo {
    const c = this.current;
    return c
      ? { classes: [...c.meta.classes], embedderId: c.meta.embedderId, inputSize: this.embedder.inputSize, fps: c.meta.fps, crop: c.meta.crop }
      : { classes: [], embedderId: this.embedder.id, inputSize: this.embedder.inputSize, fps: null, crop: 'center' };
  }

  /** The current bundle's folder; an in-memory model is saved as a bundle once, on first use. */
  async bundleDir(): Promise<string> {
    const c = this.need();
    if (c.bundleDir) return c.bundleDir;
    this.writing ??= (async () => {
      const dir = join(mkdtempSync(join(this.scratchDir, 'bundle-')), 'bundle');
      await saveBundle(dir, c.head, {
        classes: [...c.meta.classes],
        embedderId: c.meta.embedderId,
        features: c.meta.features,
        fps: c.meta.fps,
        crop: c.meta.crop,
      });
      if (this.current === c) c.bundleDir = dir;
      return dir;
    })().finally(() => (this.writing = undefined));
    return this.writing;
  }

  /** Makes the bundle in `dir` the current model (it must use this server's embedder). */
  async load(dir: string): Promise<ModelInfo> {
    const { head, meta } = await loadBundle(dir);
    if (meta.embedderId !== this.embedder.id || meta.embeddingDim !== featureDim(this.embedder.dim, meta.features ?? 'appearance')) {
      head.dispose();
      throw new FramewiseError(ErrorCodes.MODEL_INVALID, `bundle ${dir} was trained on ${meta.embedderId}; this server runs ${this.embedder.id}`);
    }
    this.owned.push(head);
    this.current = this.make(head, meta, dir);
    return this.info;
  }

  /** Waits for the current scheduler, then frees the heads load() made (the first one is its giver's). */
  async close(): Promise<void> {
    await this.current?.scheduler.idle();
    for (const h of this.owned) h.dispose();
    this.owned.length = 0;
  }

  private make(head: RecurrentHead, meta: ModelMeta, bundleDir: string | undefined): Current {
    const features = meta.features ?? 'appearance';
    const dim = featureDim(this.embedder.dim, features);
    if (head.spec.inputDim !== dim) {
      throw new FramewiseError(ErrorCodes.MODEL_INVALID, `the head takes ${head.spec.inputDim}-d inputs, ${this.embedder.id} with ${features} gives ${dim}`);
    }
    return {
      head,
      meta,
      bundleDir,
      scheduler: new LiveScheduler({
        embedder: this.embedder,
        head,
        classes: meta.classes,
        fps: meta.fps,
        features,
        maxBatch: this.maxBatch,
        unknown: unknownRuleOf(meta),
      }),
    };
  }

  private need(): Current {
    if (!this.current)
      throw new FramewiseError(ErrorCodes.NO_MODEL, 'no model yet: name two or more activities in the Teach view, record clips and press Train');
    return this.current;
  }
}
