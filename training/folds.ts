// K-fold splits for cross-validation. With few clips a single random validation split is noise (a
// fold of 3 clips swings from 0% to 35% between epochs), while k folds let every clip be validated
// once. Folds keep a group (a person, a session) on one side when a group regex names at least
// three groups; otherwise each clip is its own group and folds are stratified by class, so every
// fold sees every class. Seeded and independent of the order the videos are listed in.
import { groupOf } from './dataset.ts';
import { SeededRandom } from '../core/seeded-random.ts';

export interface FoldItem {
  name: string;
  /** Class of a single-label clip; undefined when a video holds several classes. */
  label?: number;
}

export interface Fold {
  /** Indices into the items. */
  train: number[];
  val: number[];
}

export interface FoldPlan {
  folds: Fold[];
  /** Whether folds keep groups together or split clip by clip. */
  by: 'group' | 'clip';
}

/** Fewer groups than this and group-wise folds leave too little to train on: clip-level folds. */
export const MIN_GROUPS = 3;

export function crossValidationFolds(items: readonly FoldItem[], o: { folds: number; seed: number; groupBy?: RegExp }): FoldPlan {
  const order = items.map((_, i) => i).sort((a, b) => items[a]!.name.localeCompare(items[b]!.name));
  const rng = new SeededRandom(o.seed + 11);
  const groups = new Map<string, number[]>();
  for (const i of order) {
    const g = o.groupBy ? groupOf(items[i]!.name, o.groupBy) : items[i]!.name;
    groups.set(g, [...(groups.get(g) ?? []), i]);
  }
  let units: number[][];
  let by: FoldPlan['by'];
  if (o.groupBy && groups.size >= MIN_GROUPS) {
    units = rng.shuffle([...groups.values()]);
    by = 'group';
  } else {
    // Shuffle within each class, then lay the classes end to end: dealing that list round-robin
    // gives every fold a near-equal share of each class.
    const byClass = new Map<number, number[]>();
    for (const i of order) {
      const c = items[i]!.label ?? -1;
      byClass.set(c, [...(byClass.get(c) ?? []), i]);
    }
    units = [...byClass.keys()].sort((a, b) => a - b).flatMap((c) => rng.shuffle(byClass.get(c)!).map((i) => [i]));
    by = 'clip';
  }
  const k = Math.min(o.folds, units.length);
  if (k < 2) return { folds: [], by };
  const val: number[][] = Array.from({ length: k }, () => []);
  units.forEach((u, j) => val[j % k]!.push(...u));
  const folds = val.map((v) => {
    const held = new Set(v);
    return { train: order.filter((i) => !held.has(i)), val: [...v].sort((a, b) => a - b) };
  });
  return { folds, by };
}
