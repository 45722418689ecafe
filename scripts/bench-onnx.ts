// Quick benchmark of the native engine: ms/frame and multiply-adds/s at batch 1 and 8 with 1 and 2
// ONNX Runtime threads, plus the event-loop stall one run causes. Not a test; run it alone:
//   npx tsx scripts/bench-onnx.ts [id ...]
// (exports go to the usual cache on first use; FRAMEWISE_MODELS / FRAMEWISE_CACHE apply).
import { setImmediate as tick } from 'node:timers/promises';
import { loadOnnxEmbedder } from '../models/onnx/onnx-engine.ts';
import { verificationFrames, defaultImagesDir } from '../models/onnx/verify.ts';

const ids = process.argv.slice(2).length ? process.argv.slice(2) : ['mobilenet_v2_1.0_224', 'mobilenet_v1_0.25_224'];
const { frames } = await verificationFrames(defaultImagesDir(), 224);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const spin = process.env.ORT_SPIN === '1';
console.log(`(ONNX Runtime thread spinning ${spin ? 'on' : 'off'}; ORT_SPIN=1 turns it on)`);
// Wall time is what a user gets; CPU time per frame (all threads) shows the cost when other
// processes share the cores (on a busy machine wall time overstates it).
console.log('id                     threads batch  ms/frame  frames/s   GMAC/s  cpu-ms/frame  max event-loop stall (ms)');
for (const id of ids) {
  for (const threads of [1, 2]) {
    const e = await loadOnnxEmbedder({ id, threads, batchSize: 8, spin, onProgress: (m) => console.error(m) });
    try {
      for (const batch of [1, 8]) {
        const input = Array.from({ length: batch }, (_, i) => frames[i % frames.length]!);
        for (let i = 0; i < 3; i++) await e.embed(input); // warm-up
        const runs = batch === 1 ? 40 : 10;
        const times: number[] = [];
        let stall = 0;
        const cpu0 = process.cpuUsage();
        for (let i = 0; i < runs; i++) {
          let last = performance.now();
          let done = false;
          // Measures how long the event loop could not turn while run() was in flight.
          const watcher = (async () => {
            while (!done) {
              await tick();
              const now = performance.now();
              stall = Math.max(stall, now - last);
              last = now;
            }
          })();
          const t = performance.now();
          await e.embed(input);
          times.push((performance.now() - t) / batch);
          done = true;
          await watcher;
        }
        const cpu = process.cpuUsage(cpu0);
        const cpuMs = (cpu.user + cpu.system) / 1000 / (runs * batch);
        const ms = median(times);
        console.log(
          `${id.padEnd(22)} ${String(threads).padStart(7)} ${String(batch).padStart(5)} ${ms.toFixed(2).padStart(9)} ${(1000 / ms).toFixed(0).padStart(9)} ${(((e.macsPerFrame / ms) * 1e3) / 1e9).toFixed(1).padStart(8)} ${cpuMs.toFixed(2).padStart(12)}   ${stall.toFixed(0)}`,
        );
      }
    } finally {
      e.dispose();
    }
  }
}
