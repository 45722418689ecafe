// The write step keeps every label received before an upstream error: the error waits for the
// queued writes (concatMap would drop them), and a failed write ends the stream at once.
import { Subject, lastValueFrom, toArray } from 'rxjs';
import { expect, test } from 'vitest';
import { writeEach } from '../../pipeline/write-stage.ts';

const slowly = (written: number[]) => async (v: number) => {
  await new Promise((ok) => setTimeout(ok, 5));
  written.push(v);
};

test('values sent just before an upstream error are all written, in order, before the error', async () => {
  const source = new Subject<number>();
  const written: number[] = [];
  const emitted: number[] = [];
  const done = new Promise<unknown>((ok) => source.pipe(writeEach(slowly(written))).subscribe({ next: (v) => emitted.push(v), error: ok }));
  for (let i = 0; i < 8; i++) source.next(i); // one synchronous burst, as the label stage flushes a chunk
  source.error(new Error('decode failed'));
  expect(((await done) as Error).message).toBe('decode failed');
  expect(written).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  expect(emitted).toEqual(written);
});

test('completion waits for the writes; a failed write ends the stream and stops later writes', async () => {
  const written: number[] = [];
  const all = new Subject<number>();
  const result = lastValueFrom(all.pipe(writeEach(slowly(written)), toArray()));
  [1, 2, 3].forEach((v) => all.next(v));
  all.complete();
  expect(await result).toEqual([1, 2, 3]);

  const failing = new Subject<number>();
  const tried: number[] = [];
  const failed = lastValueFrom(
    failing.pipe(
      writeEach(async (v) => {
        tried.push(v);
        if (v === 2) throw new Error('disk full');
      }),
    ),
  );
  [1, 2, 3, 4].forEach((v) => failing.next(v));
  failing.complete();
  await expect(failed).rejects.toThrow('disk full');
  expect(tried).toEqual([1, 2]);
});
