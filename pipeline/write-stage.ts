// The last step of the offline pipeline: write each label, in order, one write at a time, and
// emit it once it is on disk. Unlike concatMap, an error or completion from upstream waits until
// every label received before it has been written: a truncated file's decodable frames all reach
// the outputs before its decode error is reported (concatMap drops the queued writes at once).
import { Observable, type OperatorFunction } from 'rxjs';

/** Writes values in arrival order; a failed write ends the stream with its error. */
export function writeEach<T>(write: (value: T) => Promise<void>): OperatorFunction<T, T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      // The writes chained so far; each link runs after the previous one has finished.
      let tail: Promise<void> = Promise.resolve();
      let failed = false;
      const after = (step: () => Promise<void> | void) => {
        tail = tail.then(async () => {
          if (failed || subscriber.closed) return;
          try {
            await step();
          } catch (err) {
            failed = true;
            subscriber.error(err);
          }
        });
      };
      const sub = source.subscribe({
        next: (value) =>
          after(async () => {
            await write(value);
            subscriber.next(value);
          }),
        error: (err: unknown) => after(() => subscriber.error(err)),
        complete: () => after(() => subscriber.complete()),
      });
      return () => {
        failed = true;
        sub.unsubscribe();
      };
    });
}
