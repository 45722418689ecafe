import { defineConfig } from 'vitest/config';

// Tests share two cores with ffmpeg and tfjs: run files in forked processes (tfjs-wasm keeps
// global state per process) and give model-loading tests room for slow machines.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
