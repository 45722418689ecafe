// The sentence at the top of a training report and at the end of `train`'s output: which data
// the figures are on, with which weights, and why the frame count can exceed the held-out videos'.
import type { TrainConfig } from './config.ts';
import type { PreparedData } from './prepare.ts';

export interface ScopeFacts {
  config: Readonly<TrainConfig>;
  data: Pick<PreparedData, 'layout' | 'val' | 'train'>;
  /** Scored on the validation split (else on the training data: there was none). */
  onVal: boolean;
  /** 1-based epoch whose weights were kept. */
  bestEpoch: number;
  /** Frames the metrics count. */
  scoredFrames: number;
  /** Frames of the scored videos themselves. */
  videoFrames: number;
  /** Stitched validation sequences (folder-per-class data). */
  sequences: number;
}

export function describeScope(f: ScopeFacts): string {
  const c = f.config;
  const n = f.onVal ? f.data.val.length : f.data.train.length;
  const split = !f.onVal
    ? `the training data (${n} videos; there is no validation set, so these figures say how well it fits, not how well it generalises)`
    : c.groupBy && c.valGroups?.length
      ? `the held-out validation group${c.valGroups.length > 1 ? 's' : ''} ${c.valGroups.join(', ')} (--group-by '${c.groupBy}': ${n} videos never trained on)`
      : `the validation split (${n} videos, ${Math.round(c.valSplit * 100)}% held out with seed ${c.seed}, never trained on)`;
  let s = `Scores are on ${split}, with the weights of epoch ${f.bestEpoch}, the one with the lowest ${f.onVal ? 'validation' : 'training'} loss${f.onVal ? ' (picked on these same videos, so slightly optimistic for new data)' : ''}.`;
  if (f.onVal && f.data.layout === 'folders' && f.scoredFrames !== f.videoFrames) {
    s += ` Frame metrics count ${f.scoredFrames} frames: the ${n} held-out clips (${f.videoFrames} frames) are stitched into ${f.sequences} sequences of ${c.clipsPerSequence} clips (fixed seed, a clip may recur) so that transitions and carried state are scored; clip accuracy and the per-video table use each clip once.`;
  }
  return s;
}
