import { defineConfig } from 'vitest/config';

// Tests share two cores with ffmpeg and tfjs: run files in forked processes (tfjs-wasm keeps
// global state per process) and give model-loading tests room for slow machines.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Vitest's default is one worker per core but one: on two cores every file in turn, though many
    // of them mostly wait (on ffmpeg, sockets, a browser). Two at a time; the heavy ones share the
    // cached fixtures (test/helpers), built once whichever file comes first.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
