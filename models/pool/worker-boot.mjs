// Entry of every embedding worker thread. Plain JavaScript on purpose: a worker does not inherit
// the tsx loader the main thread was started with (`node bin/framewise.js` registers it at run
// time, vitest transforms on its own, and `--import tsx` in execArgv is not applied to a worker's
// entry on Node 20), so the worker registers tsx itself and then imports the TypeScript worker.
// tsx is resolved from this file's location, so it works from any working directory.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
