import { expect, test } from 'vitest';
import { crossValidationFolds, type FoldItem } from '../../training/folds.ts';

// 2 people x 3 classes x 3 trials, named like ud810's clips.
const clips: FoldItem[] = [];
for (const p of [1, 2]) for (const a of [0, 1, 2]) for (const t of [1, 2, 3]) clips.push({ name: `action${a + 1}/A${a + 1}P${p}T${t}`, label: a });

test('every clip is validated exactly once and never trains its own fold', () => {
  const { folds } = crossValidationFolds(clips, { folds: 3, seed: 1 });
  expect(folds).toHaveLength(3);
  const seen = folds.flatMap((f) => f.val).sort((a, b) => a - b);
  expect(seen).toEqual(clips.map((_, i) => i));
  for (const f of folds) {
    expect(f.train.filter((i) => f.val.includes(i))).toEqual([]);
    expect(f.train.length + f.val.length).toBe(clips.length);
  }
});

test('folds are seeded: same seed same folds, whatever the listing order; another seed differs', () => {
  const a = crossValidationFolds(clips, { folds: 3, seed: 7 });
  const b = crossValidationFolds(clips, { folds: 3, seed: 7 });
  expect(b).toEqual(a);
  const reversed = [...clips].reverse();
  const r = crossValidationFolds(reversed, { folds: 3, seed: 7 });
  const names = (plan: typeof a, items: FoldItem[]) => plan.folds.map((f) => f.val.map((i) => items[i]!.name).sort());
  expect(names(r, reversed)).toEqual(names(a, clips));
  expect(names(crossValidationFolds(clips, { folds: 3, seed: 8 }), clips)).not.toEqual(names(a, clips));
});

test('clip-level folds are stratified: every fold holds out every class', () => {
  const plan = crossValidationFolds(clips, { folds: 3, seed: 3 });
  expect(plan.by).toBe('clip');
  for (const f of plan.folds) expect(new Set(f.val.map((i) => clips[i]!.label))).toEqual(new Set([0, 1, 2]));
});

test('group folds keep a person on one side; fewer than 3 groups fall back to clip-level folds', () => {
  const twoPeople = crossValidationFolds(clips, { folds: 3, seed: 3, groupBy: /P(\d)/ });
  expect(twoPeople.by).toBe('clip');
  const three = [...clips, ...clips.slice(0, 9).map((c) => ({ ...c, name: c.name.replace('P1', 'P3') }))];
  const plan = crossValidationFolds(three, { folds: 3, seed: 3, groupBy: /P(\d)/ });
  expect(plan.by).toBe('group');
  const person = (i: number) => /P(\d)/.exec(three[i]!.name)![1];
  for (const f of plan.folds) {
    const held = new Set(f.val.map(person));
    expect(held.size).toBe(1);
    expect(f.train.some((i) => held.has(person(i)))).toBe(false);
  }
});

test('too few clips for two folds: no folds', () => {
  expect(crossValidationFolds(clips.slice(0, 1), { folds: 3, seed: 1 }).folds).toEqual([]);
  expect(crossValidationFolds(clips, { folds: 1, seed: 1 }).folds).toEqual([]);
});
